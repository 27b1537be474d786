import Agent
import Foundation
import Models
import Report
import Runs
import Sandbox
import WardenCore
import Workspace

/// `warden report` on a synthetic run of 400 tasks x 5 attempts (2,000 attempts), each with
/// a real 20-step trajectory recorded by a replayed episode: the summary page alone, the whole
/// report (a viewer page per attempt), the first page's size, and as a baseline, reading every
/// trajectory whole with `Trajectory.read` (what a viewer decoding everything would pay).
func runReportBenchmarks(tasks: Int = 400, attempts: Int = 5) async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-report-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let recorded = try await recordTrajectory(in: root)
    let run = root.appendingPathComponent("run")
    var rows: [AttemptResult] = []
    let statuses: [EpisodeExitStatus] = [.submitted, .submitted, .submitted, .stepLimit, .formatErrors]
    for task in 0..<tasks {
        let id = String(format: "bench__task-%04d", task)
        for attempt in 1...attempts {
            let relative = "trajectories/\(id)/\(attempt).jsonl"
            let target = run.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: recorded, to: target)
            let status = statuses[(task + attempt) % statuses.count]
            let resolved = status == .submitted && (task * 7 + attempt) % 3 != 0
            rows.append(AttemptResult(instanceID: id, attempt: attempt, exitStatus: status, resolved: resolved,
                                      resolution: resolved ? "RESOLVED_FULL" : "RESOLVED_NO", failToPassPassed: resolved ? 2 : 0, failToPassTotal: 2,
                                      passToPassPassed: 5, passToPassTotal: 5, steps: 20 + (task % 13), formatErrors: 0,
                                      promptTokens: 40_000 + task * 13, completionTokens: 3_000 + attempt * 100,
                                      episodeSeconds: 30 + Double(task % 90), scoreSeconds: 4, modelVersions: ["bench"],
                                      patch: "--- a/src/calc.py\n+++ b/src/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n",
                                      submitted: status == .submitted, trajectory: relative, error: nil))
        }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var lines = Data()
    for row in rows { lines += try encoder.encode(row); lines.append(0x0a) }
    try lines.write(to: run.appendingPathComponent("results.jsonl"))
    let trajectoryBytes = try FileManager.default.attributesOfItem(atPath: recorded.path)[.size] as? Int ?? 0

    let out = root.appendingPathComponent("report.html")
    var summary: ReportOutput?, full: ReportOutput?
    let summaryMs = try await measureMillisecondsAsync {
        summary = try await ReportWriter(runs: [run], out: out, attemptPages: false).write()
    }
    let fullMs = try await measureMillisecondsAsync {
        full = try await ReportWriter(runs: [run], out: out).write()
    }
    guard let summary, let full else { return }
    let baselineMs = try measureMilliseconds {
        for row in rows { _ = try Trajectory.read(run.appendingPathComponent(row.trajectory)) }
    }
    print("report: \(rows.count) attempts (\(tasks) tasks x \(attempts)), trajectories of 20 steps, \(trajectoryBytes / 1024) KiB each")
    print("report:   summary page \(formatted(summaryMs / 1000, digits: 2)) s, \(formatted(Double(summary.pageBytes) / 1_048_576, digits: 2)) MB first load (target < 2 MB), \(summary.tablePages) table page(s)")
    print("report:   whole report with \(full.attemptPages) viewer pages \(formatted(fullMs / 1000, digits: 2)) s (target < 5 s)")
    print("report:   baseline, every trajectory read whole with Trajectory.read: \(formatted(baselineMs / 1000, digits: 2)) s; "
        + "report / baseline \(formatted(fullMs / baselineMs, digits: 2))")
}

/// A replayed 20-command episode's trajectory, with output, changes, a submission and scoring.
private func recordTrajectory(in root: URL) async throws -> URL {
    let source = root.appendingPathComponent("source")
    try FileManager.default.createDirectory(at: source.appendingPathComponent("src"), withIntermediateDirectories: true)
    try "def add(a, b):\n    return a - b\n".write(to: source.appendingPathComponent("src/calc.py"), atomically: true, encoding: .utf8)
    let base = try RepositoryBuilder.commitAll(in: source, message: "base")
    var task = TaskInstance(instanceID: "bench", problemStatement: "Fix add: it subtracts.")
    task.baseCommit = base
    let url = root.appendingPathComponent("trajectory.jsonl")
    let spec = EpisodeSpec(task: task, repository: source, configuration: AgentConfiguration(), profile: try SandboxProfile.load("agent"),
                           workDirectory: root.appendingPathComponent("episode"), modelName: "replay", wardenVersion: "bench")
    let episode = try await Episode.prepare(spec, trajectory: url)
    let commands = (0..<18).map { "seq 1 \($0 * 40); ls -la src" } + ["sed -i 's/a - b/a + b/' src/calc.py"]
    let handler = CWMProtocol()
    let model = ReplayClient(responses: (commands.map { AgentAction.bash(command: $0) } + [.submit(path: nil)]).map { handler.render($0, callID: "") })
    _ = try await AgentLoop(model: model, episode: episode, onEvent: { _ in }).run()
    for problem in await episode.close() { print("report: \(problem)") }
    return url
}
