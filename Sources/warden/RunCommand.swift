import Agent
import ArgumentParser
import Foundation
import Models
import Runs
import Sandbox
import Scoring
import Tasks
import WardenCore

/// `warden run`: K attempts of every task of a suite, scored, resumable, shardable.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run K attempts of every task in a suite with N workers, scoring each; resumable and shardable.",
        discussion: """
            Writes RUN_DIR/trajectories/<instance_id>/<attempt>.jsonl, results.jsonl (one synced row per
            finished attempt), preds.jsonl (SWE-bench predictions from each task's first attempt),
            report.json (resolved rate, pass@1, pass@k, exit statuses, tokens, time, a row per task) and
            config.json. Running the same command again resumes: finished attempts are skipped, the
            others redone. SIGINT/SIGTERM stop new work and end running episodes as cancelled.
            """
    )

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var suiteOptions: SuiteOptions
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var agentOptions: AgentOptions
    @OptionGroup var metricsOptions: MetricsOptions

    @Option(name: .long, help: "Attempts per task.")
    var attempts: Int = 1

    @Option(name: .long, help: "Episodes at once.")
    var workers: Int = 2

    @Option(name: .long, help: "The run directory.")
    var out: String = "warden-run"

    @Option(name: .long, help: "Take a deterministic 1/N of the attempts: I/N (1-based).")
    var shard: String?

    @Flag(name: .long, help: "Continue a run directory made with another configuration.")
    var force = false

    func validate() throws {
        if attempts < 1 { throw ValidationError("--attempts must be at least 1") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let shard, AttemptPlan.parseShard(shard) == nil { throw ValidationError("--shard must be I/N with 1 <= I <= N, e.g. 2/8") }
    }

    func run() async throws {
        try logging.bootstrap()
        let (agent, handler) = try agentOptions.resolve()
        let scratch = try ScratchDirectory()
        let suite = try suiteOptions.load(cache: scratch.url.appendingPathComponent("repos"))
        let settings = RunSettings(
            suite: URL(fileURLWithPath: suiteOptions.suite).standardizedFileURL.path, filter: suiteOptions.filter, limit: suiteOptions.limit,
            attempts: attempts, model: modelOptions.model, modelSettings: modelOptions.settings, agent: agent, shard: shard,
            taskIDs: suite.tasks.map(\.instance.instanceID), wardenVersion: WardenVersion.current)

        // One HTTP client serves every attempt; stateful models (oracle, replay) get one each.
        let shared: (any ModelClient)? = modelOptions.model.hasPrefix("openai:") ? try modelOptions.makeClient(goldPatch: nil, protocol: handler) : nil
        let options = modelOptions
        // N workers must not promise their jails more memory than the host has.
        var agentProfile = try SandboxProfile.load(agent.sandboxProfile)
        let setupProfile = try SandboxProfile.load("setup")
        var scoringProfiles = [try SandboxProfile.load("tests"), setupProfile]
        if let note = try MemoryBudget.fit(workers: workers, agent: &agentProfile, scoring: &scoringProfiles,
                                           availableBytes: MemoryBudget.availableBytes()) {
            writeStandardError("warden run: \(note)\n")
        }
        var batch = BatchRunner(
            directory: URL(fileURLWithPath: out), settings: settings, suite: suite, workers: workers,
            agentProfile: agentProfile,
            evaluator: Evaluator(profile: scoringProfiles[0], setupProfile: scoringProfiles.dropFirst().first, workRoot: scratch.url),
            makeModel: { task in try shared ?? options.makeClient(goldPatch: task.goldPatch, protocol: handler) })
        batch.images = try taskImages()
        try batch.prepareDirectory(force: force)
        let metrics = try metricsOptions.start(command: "warden run")
        defer { metrics?.server.stop() }
        batch.observer = metrics?.metrics
        let runner = batch
        writeStandardError("warden run: \(runner.plan.count) attempts (\(suite.tasks.count) tasks x \(attempts)\(shard.map { ", shard \($0)" } ?? "")), "
            + "\(workers) workers, results in \(out)\n")

        let work = Task { try await runner.run() }
        let signals = SignalCancellation { work.cancel() }
        defer { signals.stop() }
        let progress = runner.progress
        let display = Task {
            await withDiscardingTaskGroup { group in
                if let metrics { group.addTask { await metrics.metrics.followQueue(of: progress) } }
                await ProgressDisplay(progress: progress).show()
                group.cancelAll()
            }
        }
        let report: BatchReport
        do {
            report = try await work.value
        } catch {
            display.cancel()
            if let shared { await shutdown(shared) }
            throw error
        }
        display.cancel()
        _ = await display.value
        if let shared { await shutdown(shared) }
        writeStandardOutput("\n" + report.summary)
        if work.isCancelled {
            writeStandardError("warden run: interrupted; run the same command again to finish the remaining attempts\n")
            throw ExitCode(130)
        }
    }
}

extension ModelOptions {
    /// The sampling settings that make a run reproducible, for config.json.
    var settings: [String: String] {
        var values: [String: String] = [:]
        if let modelName { values["model_name"] = modelName }
        if let temperature { values["temperature"] = String(temperature) }
        if let topP { values["top_p"] = String(topP) }
        if let seed { values["seed"] = String(seed) }
        if !stop.isEmpty { values["stop"] = stop.joined(separator: "\u{1f}") }
        if logprobs { values["logprobs"] = "true" }
        return values
    }
}

/// Live progress: redrawn in place on a terminal, a plain line every few seconds otherwise.
struct ProgressDisplay {
    let progress: RunProgress
    let terminal = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"

    func show() async {
        var drawnLines = 0
        var lastPlain = ContinuousClock.now - .seconds(60)
        let colour = terminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        while !Task.isCancelled {
            let snapshot = progress.snapshot
            let lines = describe(snapshot, colour: colour)
            if terminal {
                var text = drawnLines > 0 ? "\u{1b}[\(drawnLines)A" : ""
                for line in lines { text += "\u{1b}[2K" + line + "\n" }
                writeStandardError(text)
                drawnLines = lines.count
            } else if ContinuousClock.now - lastPlain >= .seconds(10) {
                writeStandardError(lines[0] + "\n")
                lastPlain = .now
            }
            try? await Task.sleep(for: .milliseconds(terminal ? 500 : 1000))
        }
    }

    func describe(_ snapshot: RunProgress.Snapshot, colour: Bool) -> [String] {
        let elapsed = ContinuousClock.now - snapshot.started
        let seconds = Double(elapsed.components.seconds)
        var eta = "?"
        if snapshot.done > 0 && snapshot.done < snapshot.total && seconds > 0 {
            eta = "\(Int(seconds / Double(snapshot.done) * Double(snapshot.total - snapshot.done)))s"
        }
        let resolved = colour ? "\u{1b}[32m\(snapshot.resolved) resolved\u{1b}[0m" : "\(snapshot.resolved) resolved"
        let statuses = snapshot.statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        var lines = ["[\(snapshot.done)/\(snapshot.total)] \(resolved), ETA \(eta)" + (statuses.isEmpty ? "" : " | \(statuses)")]
        if terminal { lines += snapshot.workers.values.sorted().map { "  " + $0 } }
        return lines
    }
}

/// `warden merge`: combine shard run directories into one run.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the run directories of shards into one run whose report equals a single-machine run."
    )

    @Argument(help: "The shard run directories.")
    var runs: [String]

    @Option(name: .long, help: "The merged run directory.")
    var out: String

    func run() throws {
        let report = try RunMerger.merge(runs.map { URL(fileURLWithPath: $0) }, into: URL(fileURLWithPath: out))
        writeStandardOutput(report.summary)
    }
}
