import Agent
import ArgumentParser
import Foundation
import Sandbox
import Tasks
import WardenCore
import Workspace

/// `warden replay`: re-execute a trajectory's actions and report where the results differ.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-run a trajectory's actions in a fresh jail at the same base and report every step that differs.",
        discussion: "Exits 0 when every step reproduced, 1 otherwise. Durations are not compared."
    )

    @Argument(help: "A trajectory.jsonl file.")
    var trajectory: String

    @Option(name: .long, help: "The repository to check out, when it is not where the trajectory says.")
    var repo: String?

    @Option(name: .long, help: "Sandbox profile (default: the trajectory's).")
    var profile: String?

    @Option(name: .long, help: "Directory for the replayed trajectory (default: a temporary one, removed afterwards).")
    var out: String?

    func run() async throws {
        let url = URL(fileURLWithPath: trajectory)
        let recorded = try Trajectory.read(url)
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-replay-\(UUID().uuidString)")
        defer { removeScratch(work) }
        var task = recorded.header.task
        task.baseCommit = recorded.header.baseCommit
        let (repository, origin) = try locateRepository(recorded.header, override: repo, cache: work.appendingPathComponent("repos"))
        let configuration = recorded.header.configuration
        let spec = EpisodeSpec(
            task: task, repository: repository, origin: origin, configuration: configuration,
            profile: try SandboxProfile.load(profile ?? recorded.header.sandboxProfile), workDirectory: work.appendingPathComponent("episode"),
            reviewer: RecordedReviews(recorded.steps), modelName: "replay of \(recorded.header.model)", wardenVersion: WardenVersion.current)
        let output = out.map { URL(fileURLWithPath: $0) } ?? work
        let episode = try await Episode.prepare(spec, trajectory: output.appendingPathComponent("trajectory.jsonl"))
        try await episode.reset()

        var differing = 0, compared = 0
        for step in recorded.steps {
            guard await !episode.isDone else {
                differing += 1
                writeStandardOutput("step \(step.index): DIFFERS (the replayed episode had already ended)\n")
                continue
            }
            _ = try await episode.step(step.response)
            guard let action = step.action, step.review != .skipped, step.review != .quit,
                  let replayed = await episode.steps.last else { continue }
            compared += 1
            var differences: [String] = []
            if replayed.exitCode != step.exitCode {
                differences.append("exit code \(step.exitCode.map(String.init) ?? "-") -> \(replayed.exitCode.map(String.init) ?? "-")")
            }
            let before = step.command?.combined.text ?? step.toolOutput ?? ""
            let after = replayed.command?.combined.text ?? replayed.toolOutput ?? ""
            if before != after { differences.append("output differs:\n" + firstDifference(before, after)) }
            if Set(replayed.changes) != Set(step.changes) {
                differences.append("changed files \(step.changes.map(\.path).sorted()) -> \(replayed.changes.map(\.path).sorted())")
            }
            if differences.isEmpty {
                writeStandardOutput("step \(step.index): same\n")
            } else {
                differing += 1
                writeStandardOutput("step \(step.index): DIFFERS (\(describe(action).prefix(80)))\n" + differences.map { "  " + $0 }.joined(separator: "\n") + "\n")
            }
        }
        for problem in await episode.close() { writeStandardError("warden replay: \(problem)\n") }
        writeStandardOutput("\(differing) of \(compared) steps differ\n")
        if differing > 0 { throw ExitCode(1) }
    }

    /// The first line where two outputs part, recorded first.
    private func firstDifference(_ before: String, _ after: String) -> String {
        let a = before.split(separator: "\n", omittingEmptySubsequences: false)
        let b = after.split(separator: "\n", omittingEmptySubsequences: false)
        let index = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        let old = index < a.count ? String(a[index]) : "(end of output)"
        let new = index < b.count ? String(b[index]) : "(end of output)"
        return "    line \(index + 1): recorded \"\(old.prefix(120))\"\n    line \(index + 1): replayed \"\(new.prefix(120))\""
    }
}

/// The repository a trajectory's checkout came from: `--repo`, else the task it records
/// (a suite task, or an instance of a suite or SWE-bench file with its `--repos` root), else
/// the repository path of an older trajectory. Says what is missing when it is gone.
func locateRepository(_ header: TrajectoryHeader, override repo: String?, cache: URL) throws -> (URL, TaskOrigin?) {
    if let repo { return (URL(fileURLWithPath: repo), .repository(path: repo)) }
    switch header.origin {
    case let .repository(path)?:
        guard FileManager.default.fileExists(atPath: path) else {
            throw WardenError("trajectory.source", "the repository \(path) the trajectory was made from is gone; pass --repo PATH")
        }
        return (URL(fileURLWithPath: path), header.origin)
    case let origin?:
        do { return (try TaskSuite.task(at: origin, cache: cache).repository, origin) } catch {
            throw WardenError("trajectory.source", "the trajectory's task cannot be found again (\(error)); pass --repo PATH")
        }
    case nil:
        guard let source = header.sourceRepository else {
            throw WardenError("trajectory.source", "the trajectory names no source repository; pass --repo PATH")
        }
        if isTaskDirectory(source) { return (try TaskSuite.task(at: .taskDirectory(path: source), cache: cache).repository, nil) }
        guard FileManager.default.fileExists(atPath: source) else {
            throw WardenError("trajectory.source", "the source repository \(source) is gone; pass --repo PATH")
        }
        return (URL(fileURLWithPath: source), nil)
    }
}
