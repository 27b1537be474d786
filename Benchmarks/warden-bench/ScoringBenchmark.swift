import Foundation
import Sandbox
import Scoring
import Tasks

/// Scoring's own cost on a starter task: fresh checkout, jail, patch application and parsing,
/// everything but the test command's run time.
func runScoringBenchmarks(runs: Int = 10) async throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-score-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let suite = try TaskSuite.load("Tasks/starter/warden__strutil-1", cache: scratch.appendingPathComponent("repos"))
    guard let task = suite.tasks.first else { throw CocoaError(.fileNoSuchFile) }
    let evaluator = Evaluator(profile: try SandboxProfile.load("tests"), workRoot: scratch)
    var overheads: [Double] = [], tests: [Double] = []
    for _ in 0..<runs {
        let result = try await evaluator.evaluate(task.instance, repository: task.repository, patch: task.instance.goldPatch)
        guard result.resolved else { print("scoring: gold did not resolve: \(result.error ?? "")"); return }
        overheads.append(result.overheadMilliseconds)
        tests.append(result.testMilliseconds)
    }
    print("scoring: \(task.instance.instanceID), overhead per instance (all but the test command) median \(formatted(percentile(overheads, 0.5), digits: 1)) ms, "
        + "p95 \(formatted(percentile(overheads, 0.95), digits: 1)) ms (target <= 100 ms); test command median \(formatted(percentile(tests, 0.5), digits: 1)) ms")
}
