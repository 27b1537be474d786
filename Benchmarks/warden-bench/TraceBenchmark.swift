import Foundation
import Sandbox
import Tasks
import Traces

/// The tracer's cost on a starter task's whole test file: the tests' call phases traced against
/// the same tests run by the same helper without tracing, in the same jail set-up and run; and
/// trace bytes (traces.jsonl plus the CWM texts) per traced second.
func runTraceBenchmarks(runs: Int = 5) async throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-trace-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let suite = try TaskSuite.load("Tasks/starter/warden__calcly-1", cache: scratch.appendingPathComponent("repos"))
    guard let task = suite.tasks.first else { throw CocoaError(.fileNoSuchFile) }
    let ids = Array(Set((task.instance.failToPass + task.instance.passToPass).map { String($0.split(separator: ":").first ?? "") })).sorted()
    var tracer = Tracer(profile: try SandboxProfile.load("tests"), workRoot: scratch)
    var traced: [Double] = [], untraced: [Double] = [], wallTraced: [Double] = [], wallUntraced: [Double] = [], rates: [Double] = []
    var frames = 0
    for run in 0..<runs {
        for mode in [false, true] {
            tracer.untraced = !mode
            let out = scratch.appendingPathComponent("out-\(run)-\(mode)")
            var result: TraceOutput?
            let wall = try await measureMillisecondsAsync {
                result = try await tracer.traceTests(task.instance, repository: task.repository, testIDs: ids, patch: task.instance.goldPatch, output: out)
            }
            guard let result, !result.rows.isEmpty, result.rows.allSatisfy({ $0.outcome == "passed" }) else {
                print("trace: the tests did not all pass: \(result?.log ?? "")"); return
            }
            let seconds = result.rows.compactMap(\.seconds).reduce(0, +)
            if mode {
                traced.append(seconds * 1000); wallTraced.append(wall)
                frames = result.rows.reduce(0) { $0 + $1.frames.count }
                rates.append(Double(try directoryBytes(out)) / seconds / 1_048_576)
            } else {
                untraced.append(seconds * 1000); wallUntraced.append(wall)
            }
        }
    }
    let ratio = percentile(traced, 0.5) / percentile(untraced, 0.5)
    print("trace: \(task.instance.instanceID), \(ids.joined(separator: " ")), \(frames) frames; tests' call phases median "
        + "\(formatted(percentile(traced, 0.5), digits: 1)) ms traced vs \(formatted(percentile(untraced, 0.5), digits: 1)) ms untraced "
        + "(ratio \(formatted(ratio, digits: 1))); whole jail run \(formatted(percentile(wallTraced, 0.5), digits: 0)) ms vs "
        + "\(formatted(percentile(wallUntraced, 0.5), digits: 0)) ms (ratio \(formatted(percentile(wallTraced, 0.5) / percentile(wallUntraced, 0.5), digits: 2))); "
        + "trace output median \(formatted(percentile(rates, 0.5), digits: 2)) MB per traced second")
}

private func directoryBytes(_ url: URL) throws -> Int {
    var total = 0
    let enumerator = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey])
    while let file = enumerator?.nextObject() as? URL {
        total += try file.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0
    }
    return total
}
