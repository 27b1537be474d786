import Foundation
import Workspace
import WardenCore

/// Peak resident memory of one `warden solve` process replaying a 21-step episode (20 bash
/// commands, then submit), beside `/bin/true` started the same way as the floor. Both are
/// run under GNU time (`%M`); five runs each, medians.
func runFootprintBenchmarks(runs: Int = 5) throws {
    let products = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).deletingLastPathComponent()
    let warden = products.appendingPathComponent("warden").path
    guard FileManager.default.isExecutableFile(atPath: warden) else {
        throw WardenError("bench.footprint", "build the warden product first (\(warden) is missing)")
    }
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-footprint-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let repository = root.appendingPathComponent("repo")
    try FileManager.default.createDirectory(at: repository.appendingPathComponent("src"), withIntermediateDirectories: true)
    for index in 0..<20 {
        try "def f\(index)(x):\n    return x + \(index)\n".write(to: repository.appendingPathComponent("src/m\(index).py"), atomically: true, encoding: .utf8)
    }
    _ = try RepositoryBuilder.commitAll(in: repository, message: "base")
    var responses = (1...20).map { "<tool: bash>\necho step \($0) >> notes.txt && wc -l notes.txt\n</tool>" }
    responses.append("<tool: submit>\n</tool>")
    let script = root.appendingPathComponent("responses.json")
    try JSONEncoder().encode(responses).write(to: script)

    var solves: [Double] = [], floors: [Double] = []
    for run in 0..<runs {
        floors.append(try peakResidentMegabytes(of: "/bin/true", []))
        let arguments = ["solve", "--repo", repository.path, "--issue-text", "Write twenty notes.", "--model", "replay:\(script.path)",
                         "--protocol", "cwm", "--out", root.appendingPathComponent("out-\(run)").path]
        solves.append(try peakResidentMegabytes(of: warden, arguments))
    }
    let solve = percentile(solves, 0.5), floor = percentile(floors, 0.5)
    print("footprint: one replayed 21-step solve peaks at \(formatted(solve, digits: 1)) MB resident (median of \(runs); "
        + "range \(formatted(solves.min() ?? 0, digits: 1))–\(formatted(solves.max() ?? 0, digits: 1))), "
        + "/bin/true started the same way \(formatted(floor, digits: 1)) MB (target: <= 30 MB)")
}

/// Runs `path` with `arguments` (output discarded) under GNU time, which forks it, and returns
/// its peak resident memory. Measuring by our own `wait4` would not do: a child started with
/// posix_spawn (vfork) is charged the parent's peak at its exec.
private func peakResidentMegabytes(of path: String, _ arguments: [String]) throws -> Double {
    let time = "/usr/bin/time"
    guard FileManager.default.isExecutableFile(atPath: time) else {
        throw WardenError("bench.footprint", "needs GNU time: apt-get install time")
    }
    let report = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-rss-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: report) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([time, "-f", "%M", "-o", report.path, path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, time, &actions, nil, argv, environ)
    guard spawned == 0 else { throw WardenError("bench.footprint", "cannot start \(time): \(String(cString: strerror(spawned)))") }
    var status: Int32 = 0
    guard waitpid(pid, &status, 0) == pid else { throw WardenError("bench.footprint", "waitpid failed") }
    guard status == 0 else { throw WardenError("bench.footprint", "\(path) \(arguments.first ?? "") exited with status \(status)") }
    let kilobytes = try String(contentsOf: report, encoding: .utf8).split(separator: "\n").last.flatMap { Double($0) }
    guard let kilobytes else { throw WardenError("bench.footprint", "GNU time wrote no peak for \(path)") }
    return kilobytes / 1024
}
