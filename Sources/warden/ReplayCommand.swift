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

    func run() async throws {
        let recorded = try Trajectory.read(URL(fileURLWithPath: trajectory))
        guard let source = repo ?? recorded.header.sourceRepository else {
            throw WardenError("replay.source", "the trajectory names no source repository; pass --repo PATH")
        }
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-replay-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let checkout = work.appendingPathComponent("checkout"), state = work.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        var repository = URL(fileURLWithPath: source)
        if isTaskDirectory(source) {
            // A suite task: its plain files are committed again, to the same base commit.
            repository = try TaskSuite.load(source, cache: work.appendingPathComponent("repos")).tasks.first?.repository ?? repository
        }
        try WorkspaceTracker.materialize(source: repository, commit: recorded.header.baseCommit, into: checkout)
        let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: state)
        let configuration = recorded.header.configuration
        let jail = try JailConfiguration(profile: try SandboxProfile.load(profile ?? recorded.header.sandboxProfile), checkout: checkout)
        let shell = ShellSession(configuration: jail)
        defer { shell.close() }
        let environment = AgentEnvironment(shell: shell, tracker: tracker, observationCharacters: configuration.observationCharacters)

        var differing = 0
        for step in recorded.steps {
            guard let action = step.action, step.review != "skipped", step.review != "quit" else { continue }
            let outcome = try await environment.execute(action, timeout: configuration.limits.commandTimeoutSeconds)
            let changes = try tracker.snapshot().sincePrevious
            var differences: [String] = []
            if outcome.exitCode != step.exitCode {
                differences.append("exit code \(step.exitCode.map(String.init) ?? "-") -> \(outcome.exitCode.map(String.init) ?? "-")")
            }
            let before = step.command?.combined.text ?? step.toolOutput ?? ""
            let after = outcome.command?.combined.text ?? outcome.toolOutput ?? ""
            if before != after { differences.append("output differs:\n" + firstDifference(before, after)) }
            if Set(changes) != Set(step.changes) {
                differences.append("changed files \(step.changes.map(\.path).sorted()) -> \(changes.map(\.path).sorted())")
            }
            if differences.isEmpty {
                writeStandardOutput("step \(step.index): same\n")
            } else {
                differing += 1
                writeStandardOutput("step \(step.index): DIFFERS (\(describe(action).prefix(80)))\n" + differences.map { "  " + $0 }.joined(separator: "\n") + "\n")
            }
        }
        writeStandardOutput("\(differing) of \(recorded.steps.filter { $0.action != nil }.count) steps differ\n")
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
