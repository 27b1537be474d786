import Foundation
import WardenCore
import Workspace

/// Where the time from `exec` to the first command goes, for a 20-file repository.
///
/// End to end: `warden solve` with a replayed model whose first command prints bash's
/// `$EPOCHREALTIME` (a builtin: no process is started to read the clock), against the
/// wall clock read just before `posix_spawn`. The breakdown is the same solves' own marks
/// (`WARDEN_STARTUP_TRACE`): when `run` starts after argument parsing, when the jail, the
/// checkout and the tracker start and finish, the trajectory's header. Beside them the floors:
/// `/bin/true`, a fresh bash reaching its first command, and `warden --version`. Medians of `runs`.
func runStartupBenchmarks(runs: Int = 21) async throws {
    let products = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).deletingLastPathComponent()
    let warden = products.appendingPathComponent("warden").path
    guard FileManager.default.isExecutableFile(atPath: warden) else {
        throw WardenError("bench.startup", "build the warden product first (\(warden) is missing)")
    }
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-startup-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let repository = root.appendingPathComponent("repo")
    try FileManager.default.createDirectory(at: repository.appendingPathComponent("src"), withIntermediateDirectories: true)
    for index in 0..<20 {
        try "def f\(index)(x):\n    return x + \(index)\n".write(to: repository.appendingPathComponent("src/m\(index).py"), atomically: true, encoding: .utf8)
    }
    _ = try RepositoryBuilder.commitAll(in: repository, message: "base")
    let responses = ["<tool: bash>\necho $EPOCHREALTIME\n</tool>", "<tool: bash>\necho done >> src/m0.py\n</tool>", "<tool: submit>\n</tool>"]
    let script = root.appendingPathComponent("responses.json")
    try JSONEncoder().encode(responses).write(to: script)

    // WARDEN_BENCH_BASELINE names an earlier build of warden to time in the same runs,
    // alternating with this one (the machines are shared: only same-run figures compare).
    let baseline = ProcessInfo.processInfo.environment["WARDEN_BENCH_BASELINE"]
    var baselineEndToEnd: [Double] = []
    var endToEnd: [Double] = [], versions: [Double] = [], floors: [Double] = [], bashFloors: [Double] = []
    var marks: [String: [Double]] = [:]
    var order: [String] = []
    for run in 0..<runs {
        floors.append(try spawnToExit("/bin/true", []))
        versions.append(try spawnToExit(warden, ["--version"]))
        let printed = root.appendingPathComponent("bash-\(run).txt")
        let bashSpawned = Date().timeIntervalSince1970
        _ = try spawnToExit("/bin/bash", ["--noprofile", "--norc", "-c", "echo $EPOCHREALTIME > \(printed.path)"])
        guard let bashStarted = Double(try String(contentsOf: printed, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw WardenError("bench.startup", "bash printed no time", context: printed.path)
        }
        bashFloors.append((bashStarted - bashSpawned) * 1000)
        let out = root.appendingPathComponent("out-\(run)")
        let trace = root.appendingPathComponent("marks-\(run).txt")
        let spawned = Date().timeIntervalSince1970
        _ = try spawnToExit(warden, ["solve", "--repo", repository.path, "--issue-text", "Append a line.", "--model", "replay:\(script.path)",
                                     "--protocol", "cwm", "--out", out.path], environment: ["WARDEN_STARTUP_TRACE=\(trace.path)"])
        endToEnd.append((try firstCommandStart(in: out.appendingPathComponent("trajectory.jsonl")) - spawned) * 1000)
        if let baseline {
            let baselineOut = root.appendingPathComponent("baseline-out-\(run)")
            let baselineSpawned = Date().timeIntervalSince1970
            _ = try spawnToExit(baseline, ["solve", "--repo", repository.path, "--issue-text", "Append a line.", "--model", "replay:\(script.path)",
                                           "--protocol", "cwm", "--out", baselineOut.path])
            baselineEndToEnd.append((try firstCommandStart(in: baselineOut.appendingPathComponent("trajectory.jsonl")) - baselineSpawned) * 1000)
        }
        var seen: Set<String> = []
        for line in try String(contentsOf: trace, encoding: .utf8).split(separator: "\n") {
            guard let space = line.lastIndex(of: " "), let time = Double(line[line.index(after: space)...]) else { continue }
            let name = String(line[..<space])
            guard seen.insert(name).inserted else { continue }  // a mark's first time in a run
            if marks[name] == nil { order.append(name) }
            marks[name, default: []].append((time - spawned) * 1000)
        }
    }

    let total = percentile(endToEnd, 0.5)
    print("startup: exec to the first command's start median \(formatted(total, digits: 1)) ms (p10 \(formatted(percentile(endToEnd, 0.1), digits: 1)), "
        + "p90 \(formatted(percentile(endToEnd, 0.9), digits: 1)); target <= 20 ms) on a 20-file repository, \(runs) runs")
    if let baseline {
        let before = percentile(baselineEndToEnd, 0.5)
        print("startup: the baseline \(baseline) in the same runs: median \(formatted(before, digits: 1)) ms (p10 \(formatted(percentile(baselineEndToEnd, 0.1), digits: 1)), "
            + "p90 \(formatted(percentile(baselineEndToEnd, 0.9), digits: 1))); this build takes \(formatted(total / before, digits: 2))x its time")
    }
    print("startup: floors: /bin/true spawn to exit \(formatted(percentile(floors, 0.5), digits: 2)) ms, a fresh bash to its first command "
        + "\(formatted(percentile(bashFloors, 0.5), digits: 2)) ms; warden --version spawn to exit \(formatted(percentile(versions, 0.5), digits: 2)) ms")
    // The marks of the same runs, in the order they first appeared: median ms since spawn.
    print("startup: marks in the same solves (median ms after spawn; jail, materialize and tracker run side by side):")
    for name in order {
        print("startup:   \(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(formatted(percentile(marks[name] ?? [], 0.5), digits: 1))")
    }
    print("startup:   first command    \(formatted(total, digits: 1))")
}

/// The wall-clock time (seconds since 1970) that the first command of a trajectory printed.
private func firstCommandStart(in trajectory: URL) throws -> Double {
    let lines = try String(contentsOf: trajectory, encoding: .utf8).split(separator: "\n")
    for line in lines.dropFirst() {
        guard let step = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let command = step["command"] as? [String: Any], let stdout = command["stdout"] as? [String: Any],
              let head = stdout["head"] as? String, let value = Double(head.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
        return value
    }
    throw WardenError("bench.startup", "no step printed a time", context: trajectory.path)
}

/// Milliseconds from `posix_spawn` of `path` to its exit (output discarded); it must exit 0 or 1.
private func spawnToExit(_ path: String, _ arguments: [String], environment extra: [String] = []) throws -> Double {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var inherited: [String] = []
    var entry = environ
    while let variable = entry.pointee {
        inherited.append(String(cString: variable))
        entry += 1
    }
    let envp = (inherited + extra).map { strdup($0) } + [nil]
    defer { envp.forEach { free($0) } }
    var pid: pid_t = 0
    var status: Int32 = 0
    let start = ContinuousClock.now
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
    guard spawned == 0 else { throw WardenError("bench.startup", "cannot start \(path): \(String(cString: strerror(spawned)))") }
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let elapsed = ContinuousClock.now - start
    // solve exits 1 when the replayed model runs out; anything else is a failure.
    guard status == 0 || status == 256 else { throw WardenError("bench.startup", "\(path) \(arguments.first ?? "") exited with status \(status)") }
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}
