// Prints medians and ratios to baselines measured in the same run. Run a release build:
//   swift build -c release && .build/release/warden-bench
import Foundation

do {
    try runSandboxBenchmarks()
} catch {
    print("sandbox benchmarks failed: \(error)")
}
runWorkspaceBenchmarks()
do {
    try await runAgentBenchmarks()
} catch {
    print("agent benchmarks failed: \(error)")
}
print("harness peak resident memory \(formatted(peakResidentMegabytes(), digits: 1)) MB")
