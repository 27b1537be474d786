import Agent
import ArgumentParser
import Foundation
import Images
import Runs
import Sandbox
import Scoring
import Tasks
import WardenCore
import Workspace

/// `warden solve`: one episode on the user's repository.
struct SolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "solve",
        abstract: "Let a model solve an issue in a jailed fresh checkout, recording every step.",
        discussion: """
            Either a suite task (`warden solve Tasks/starter/warden__calcly-1`, or a suite or SWE-bench
            file with --instance ID), scored by its hidden tests at the end unless --no-score; or an
            issue on your own repository (--repo PATH --issue FILE): the agent works on a fresh
            checkout of its HEAD, never on your working tree, and --apply applies the patch to your
            tree at the end. The trajectory (one JSON line per step) and the patch go to --out.
            Ctrl-C ends the episode cleanly with status cancelled.
            """
    )

    @Argument(help: "A suite task directory, or a suite / SWE-bench file with --instance.")
    var task: String?

    @Option(name: .long, help: "The instance id to take from a suite or SWE-bench file.")
    var instance: String?

    @Option(name: .long, help: "The task's image when its row names none (see `warden run --help`).")
    var imageTemplate: String?

    @Option(name: .long, help: "Folder of repositories for SWE-bench files: DIR/OWNER__NAME or DIR/OWNER/NAME.")
    var repos: String?

    @Flag(name: .long, help: "Do not score a suite task's submission.")
    var noScore = false

    @Option(name: .long, help: "The repository to work on (its HEAD is checked out afresh).")
    var repo: String = "."

    @Option(name: .long, help: "A file holding the issue text.")
    var issue: String?

    @Option(name: .long, help: "The issue text itself.")
    var issueText: String?

    @Option(name: .long, help: "A gold patch for --model oracle.")
    var goldPatch: String?

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var agentOptions: AgentOptions

    @Option(name: .long, help: "Directory for trajectory.jsonl and patch.diff.")
    var out: String?

    @Flag(name: .long, help: "Apply the resulting patch to the repository's working tree.")
    var apply = false

    @Flag(name: .long, help: "Ask before each action: run, edit, skip or quit.")
    var confirm = false

    @Flag(name: .long, help: "Print only the final summary, not each step.")
    var quiet = false

    func validate() throws {
        if task == nil && (issue == nil) == (issueText == nil) {
            throw ValidationError("give a suite task, or the issue with --issue FILE or --issue-text TEXT")
        }
        if task != nil && apply { throw ValidationError("--apply is for your own repository (--repo), not for suite tasks") }
    }

    func run() async throws {
        StartupTrace.mark("run")
        try logging.bootstrap()
        let (configuration, handler) = try agentOptions.resolve()
        let profile = try SandboxProfile.load(configuration.sandboxProfile)
        JailConfiguration.probeHostInBackground(for: profile)

        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-solve-\(UUID().uuidString)")
        defer { removeScratch(work) }
        let chosen = try resolveTask(cache: work.appendingPathComponent("repos"))
        let (task, repository) = (chosen.instance, chosen.repository)
        if chosen.repositoryInImage && apply {
            throw WardenError("solve.apply", "--apply writes into the task's repository, which here is its image's; pass --repos with a copy")
        }
        let output = URL(fileURLWithPath: out ?? "warden-runs/\(task.instanceID)-\(Int(Date().timeIntervalSince1970))")
        let client = try modelOptions.makeClient(goldPatch: task.goldPatch, protocol: handler)
        let scored = self.task != nil && !noScore
        var spec = EpisodeSpec(
            task: task, repository: repository, origin: chosen.origin, configuration: configuration,
            profile: profile, workDirectory: work.appendingPathComponent("episode"),
            evaluator: scored ? Evaluator(profile: try SandboxProfile.load("tests"), setupProfile: try SandboxProfile.load("setup"), workRoot: work) : nil,
            scoreOutput: output.appendingPathComponent("score"), reviewer: confirm ? TerminalReviewer() : nil,
            modelName: client.name, wardenVersion: WardenVersion.current)
        StartupTrace.mark("spec")
        let images = try taskImages()
        spec.image = try await images.image(for: task)
        spec.repository = try await chosen.repository(in: spec.image, images: images)
        StartupTrace.mark("images")
        let episode = try await Episode.prepare(spec, trajectory: output.appendingPathComponent("trajectory.jsonl"))
        StartupTrace.mark("prepared")
        writeStandardError("warden solve: \(task.instanceID) with \(client.name), protocol \(configuration.protocol); trajectory in \(episode.trajectoryURL.path)\n")
        let final = try await runInteractively(episode, model: client, quiet: quiet, output: output, command: "solve")
        let patch = final.submission ?? final.finalDiff
        writeStandardOutput(patch)
        if apply && !patch.isEmpty {
            let applyState = work.appendingPathComponent("apply-state")
            try FileManager.default.createDirectory(at: applyState, withIntermediateDirectories: true)
            try WorkspaceTracker(checkout: repository, stateDirectory: applyState).apply(patch: patch)
            writeStandardError("warden solve: applied the patch to \(repository.path)\n")
        }
        try exitStatusCode(for: final)
    }

    /// The suite task named on the command line, or an issue on the user's repository.
    private func resolveTask(cache: URL) throws -> SuiteTask {
        if let reference = self.task {
            var suite = try TaskSuite.load(reference, repos: repos.map { URL(fileURLWithPath: $0) }, cache: cache,
                                           imagesHoldRepositories: imageTemplate != nil)
            if let instance { suite.tasks = suite.tasks.filter { $0.instance.instanceID == instance } }
            for problem in suite.problems { writeStandardError("warden: \(problem)\n") }
            guard suite.tasks.count == 1, let chosen = suite.tasks.first else {
                throw WardenError("solve.task", suite.tasks.isEmpty
                    ? "no loadable task \(instance.map { "with id \($0) " } ?? "")in \(reference)"
                    : "\(reference) holds \(suite.tasks.count) tasks; choose one with --instance ID")
            }
            var task = chosen
            if task.instance.image == nil, let imageTemplate { task.instance.image = ImageTemplate.expand(imageTemplate, instanceID: task.instance.instanceID) }
            return task
        }
        let repository = URL(fileURLWithPath: repo).standardizedFileURL
        let problem: String
        if let issue {
            do { problem = try String(contentsOfFile: issue, encoding: .utf8) } catch {
                throw WardenError("solve.issue", "cannot read the issue: \(error.localizedDescription)", context: issue)
            }
        } else {
            problem = issueText ?? ""
        }
        let gold = try goldPatch.map { path in
            do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw WardenError("solve.gold", "cannot read the gold patch: \(error.localizedDescription)", context: path)
            }
        }
        return SuiteTask(instance: TaskInstance(instanceID: repository.lastPathComponent + "-issue", problemStatement: problem,
                                                repo: repository.path, goldPatch: gold),
                         repository: repository, origin: .repository(path: repository.path))
    }
}

/// Runs an episode at the terminal (`solve`, `fork`): Ctrl-C and SIGTERM cancel it and it still
/// writes its final record; then the jail is closed, the patch written to `output/patch.diff`,
/// and the ending and score reported.
func runInteractively(_ episode: Episode, model: any ModelClient, quiet: Bool, output: URL, command: String) async throws -> TrajectoryFinal {
    let running = Task { try await AgentLoop(model: model, episode: episode, onEvent: EpisodePrinter(quiet: quiet).show).run() }
    let signals = SignalCancellation { running.cancel() }
    defer { signals.stop() }
    let result = await running.result
    for problem in await episode.close() { writeStandardError("warden \(command): \(problem)\n") }
    await shutdown(model)
    let final = try result.get()
    if let score = final.score {
        writeStandardError("warden \(command): \(score.resolved ? "RESOLVED" : "not resolved")"
            + " (\(score.resolution?.rawValue ?? score.error ?? "no grade")); logs in \(output.appendingPathComponent("score").path)\n")
    } else if let problem = final.scoreError {
        writeStandardError("warden \(command): scoring failed: \(problem)\n")
    }
    let patchURL = output.appendingPathComponent("patch.diff")
    try Data((final.submission ?? final.finalDiff).utf8).write(to: patchURL)
    writeStandardError("\nwarden \(command): \(final.exitStatus.rawValue) after \(final.steps) steps"
        + (final.detail.map { " (\($0))" } ?? "") + "; patch in \(patchURL.path)\n")
    return final
}

/// The process's exit for an episode's ending: 0 when it submitted, 130 when interrupted, else 1.
func exitStatusCode(for final: TrajectoryFinal) throws {
    switch final.exitStatus {
    case .submitted: return
    case .cancelled: throw ExitCode(130)
    default: throw ExitCode(1)
    }
}

/// True for a suite task folder (it holds task.json).
func isTaskDirectory(_ path: String) -> Bool {
    FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent("task.json").path)
}

/// Cancels work on SIGINT or SIGTERM.
final class SignalCancellation: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(_ cancel: @escaping @Sendable () -> Void) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler(handler: cancel)
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        sources.forEach { $0.cancel() }
    }
}

/// Shows each step as it happens: reasoning, action, output, changed files.
struct EpisodePrinter: Sendable {
    let quiet: Bool

    func show(_ event: AgentEvent) {
        guard !quiet, case let .step(step) = event else { return }
        var text = "\n── step \(step.index) "
        if let reasoning = step.reasoning, !reasoning.isEmpty {
            text += "\n" + reasoning.split(separator: "\n").prefix(6).map { "  │ " + $0 }.joined(separator: "\n")
        }
        if let problem = step.formatError {
            text += "\n  format error: \(problem)\n"
            writeStandardError(text)
            return
        }
        if let action = step.action { text += "\n" + describe(action) }
        if let review = step.review { text += "\n  (\(review.rawValue) by the operator)" }
        let output = step.command?.combined.text ?? step.toolOutput ?? ""
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        text += "\n" + lines.prefix(15).joined(separator: "\n")
        if lines.count > 15 { text += "\n  … \(lines.count - 15) more lines" }
        text += "\n  [exit \(step.exitCode.map(String.init) ?? "-") · " + String(format: "%.2f s", step.durationMs / 1000) + "]"
        if !step.changes.isEmpty { text += " changed: " + step.changes.map { "\($0.status.rawValue.prefix(1).uppercased()) \($0.path)" }.joined(separator: ", ") }
        writeStandardError(text + "\n")
    }
}

/// One line (or a few) saying what an action does.
func describe(_ action: AgentAction) -> String {
    switch action {
    case let .bash(command): "$ " + command
    case let .edit(path, search, replace): "edit \(path): \(search.split(separator: "\n").count) line(s) -> \(replace.split(separator: "\n").count)"
    case let .create(path, content): "create \(path) (\(content.utf8.count) bytes)"
    case let .submit(path): "submit" + (path.map { " \($0)" } ?? "")
    }
}

/// Asks a person at the terminal before each action.
struct TerminalReviewer: ActionReviewer {
    func review(_ action: AgentAction) async -> ReviewDecision {
        while true {
            writeStandardError("\n\(describe(action))\n[r]un, [e]dit, [s]kip or [q]uit? ")
            guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else { return .quit }
            switch answer {
            case "", "r", "run": return .run
            case "s", "skip": return .skip
            case "q", "quit": return .quit
            case "e", "edit":
                writeStandardError("new bash command (one line): ")
                guard let command = readLine(), !command.isEmpty else { continue }
                return .replace(.bash(command: command))
            default: continue
            }
        }
    }
}
