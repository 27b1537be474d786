import Foundation
import Sandbox
import Synth

/// `warden synth` on a starter library: candidates validated per minute with two workers on the
/// machine's cores, the share kept, against the bound set by the suite itself (every candidate
/// runs it twice), measured as baseline runs per minute in the same run.
func runSynthBenchmarks(maxTasks: Int = 8) async throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-synth-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let source = try SynthSource.prepare("Tasks/starter/warden__calcly-1", work: scratch.appendingPathComponent("source"))
    let profile = try SandboxProfile.load("tests")
    let configuration = SynthConfiguration(output: scratch.appendingPathComponent("suite"), maxTasks: maxTasks, seed: 7, workers: 2)
    let summary = try await Synthesizer(source: source, configuration: configuration, profile: profile).run(work: scratch.appendingPathComponent("work"))
    let perMinute = Double(summary.tried) * 60 / summary.seconds
    // The bound: suite runs per minute on two workers, halved (two runs per candidate).
    let runs = 6
    let started = ContinuousClock.now
    let bound = SynthConfiguration(output: scratch.appendingPathComponent("bound"), maxTasks: 1, seed: 7, workers: 2, maxCandidates: 0, baselineRuns: runs)
    _ = try? await Synthesizer(source: source, configuration: bound, profile: profile).run(work: scratch.appendingPathComponent("work-bound"))
    let elapsed = ContinuousClock.now - started
    let boundSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let boundPerMinute = Double(runs) * 60 / boundSeconds / 2
    print("synth: \(source.name), \(summary.tried) candidates, \(summary.kept) kept (\(formatted(Double(summary.kept) * 100 / Double(max(1, summary.tried)), digits: 0))%), "
        + "\(summary.keptTwoLocation) two-location; \(formatted(perMinute, digits: 1)) candidates validated per minute on 2 workers vs "
        + "\(formatted(boundPerMinute, digits: 1)) suite-bound (ratio \(formatted(perMinute / boundPerMinute, digits: 2))); dropped: "
        + summary.dropped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
}
