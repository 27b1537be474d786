// Prints medians and ratios to baselines measured in the same run. Run a release build:
//   swift build -c release && .build/release/warden-bench [sandbox] [workspace] [agent] [scoring] [model] [fork] [serve] [throughput] [memory] [footprint] [trace] [startup] [long] [synth] [report] [images]
// With no names every benchmark runs; run `memory` alone for a clean
// peak-memory figure with 32 concurrent episodes.
import Foundation

let chosen = Set(CommandLine.arguments.dropFirst())
func wanted(_ name: String) -> Bool { chosen.isEmpty || chosen.contains(name) }

do {
    if wanted("sandbox") { try runSandboxBenchmarks() }
    if wanted("workspace") { runWorkspaceBenchmarks() }
    if wanted("agent") { try await runAgentBenchmarks() }
    if wanted("scoring") { try await runScoringBenchmarks() }
    if wanted("model") { try await runModelBenchmarks() }
    // Not part of the default run: one mode alone, long enough for `perf record`.
    if chosen.contains("model-streamed") { try await profileModelCalls(streaming: true) }
    if chosen.contains("model-plain") { try await profileModelCalls(streaming: false) }
    if wanted("fork") { try await runForkBenchmarks() }
    if wanted("serve") { try await runServerBenchmarks() }
    if wanted("throughput") { try await runThroughputBenchmarks(episodes: 48, concurrency: 16) }
    if wanted("trace") { try await runTraceBenchmarks() }
    if wanted("memory") { try await runThroughputBenchmarks(episodes: 32, concurrency: 32) }
    if wanted("steady") { try await runThroughputBenchmarks(episodes: 192, concurrency: 32) }
    if wanted("long")  { try await runThroughputBenchmarks(episodes: 32, concurrency: 32, stepsPerEpisode: 200) }
    if wanted("footprint") { try runFootprintBenchmarks() }
    if wanted("startup") { try await runStartupBenchmarks() }
    if wanted("synth") { try await runSynthBenchmarks() }
    if wanted("report") { try await runReportBenchmarks() }
    if wanted("images") { try await runImageBenchmarks() }
} catch {
    print("benchmark failed: \(error)")
}
print("harness peak resident memory \(formatted(peakResidentMegabytes(), digits: 1)) MB")
