import Foundation
import Sandbox

/// Jail costs against unjailed baselines measured in the same run.
func runSandboxBenchmarks(runs: Int = 200) throws {
    let checkout = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: checkout, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: checkout) }
    let profile = try SandboxProfile.load("agent")
    let configuration = try JailConfiguration(profile: profile, checkout: checkout)

    // Baseline: posix_spawn of `bash -c true`, no jail.
    var spawnTimes: [Double] = []
    for _ in 0..<runs {
        spawnTimes.append(measureMilliseconds { spawnAndWait(["/bin/bash", "-c", "true"]) })
    }

    // One external command through the persistent jailed shell.
    let shell = ShellSession(configuration: configuration)
    try shell.start()
    _ = try shell.run("/bin/true")
    var roundTrips: [Double] = []
    for _ in 0..<runs {
        roundTrips.append(try measureMilliseconds { _ = try shell.run("/bin/true") })
    }
    shell.close()

    // A fresh jail: helper spawn, namespaces, mounts, seccomp, bash ready for commands.
    var starts: [Double] = []
    for _ in 0..<max(20, runs / 5) {
        let fresh = ShellSession(configuration: configuration)
        starts.append(try measureMilliseconds {
            _ = try fresh.run("true")
        })
        fresh.close()
    }

    let spawn = percentile(spawnTimes, 0.5), roundTrip = percentile(roundTrips, 0.5), start = percentile(starts, 0.5)
    print("sandbox: posix_spawn bash -c true (no jail)      median \(formatted(spawn)) ms")
    print("sandbox: /bin/true via persistent jailed shell  median \(formatted(roundTrip)) ms, p95 \(formatted(percentile(roundTrips, 0.95))) ms, ratio to spawn \(formatted(roundTrip / spawn, digits: 2)) (target <= 1.5)")
    print("sandbox: fresh jail to first command done       median \(formatted(start)) ms, ratio to spawn \(formatted(start / spawn, digits: 2))")
}

/// posix_spawn and wait, the cheapest way to run an unjailed program.
private func spawnAndWait(_ arguments: [String]) {
    var pid: pid_t = 0
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    guard posix_spawn(&pid, arguments[0], nil, nil, argv, environ) == 0 else { return }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
}
