import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Workspace

/// Compares `WorkspaceTracker.snapshot()` with `git status --porcelain` on a small and a 5,000-file repository.
///
/// Each repository gets a small change before measuring (20 files edited, 5 deleted, 10
/// untracked added) and 10% ignored files. Medians of 30 runs; the watched tracker (the
/// default), a full-scan tracker (the previous implementation) and the CLI alternate, each
/// after its own edit of 0, 1 or 20 files (the cost after a typical command).
/// `git status --porcelain` is timed from `posix_spawn` to `waitpid` (spawn included, about 1 ms);
/// Foundation's `Process` adds up to ~50 ms of wake-up latency on Linux, so it is not used for timing.
func runWorkspaceBenchmarks() {
    for fileCount in [20, 5_000] {
        do {
            try benchmarkWorkspace(fileCount: fileCount, runs: 30)
        } catch {
            print("workspace \(fileCount) files: failed: \(error)")
        }
    }
}

private func benchmarkWorkspace(fileCount: Int, runs: Int) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-ws-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let checkout = root.appendingPathComponent("checkout")
    let state = root.appendingPathComponent("state")
    try FileManager.default.createDirectory(at: checkout, withIntermediateDirectories: true)

    // A repository shaped like a source tree: directories of ~100 files, 10% extra ignored files.
    let perDirectory = 100
    var files: [String] = []
    for i in 0..<fileCount {
        let path = "src/pkg\(i / perDirectory)/mod\(i / 10 % 10)/file\(i).swift"
        files.append(path)
        try benchWrite(String(repeating: "let value\(i) = \(i) // padding padding padding\n", count: 20), to: checkout.appendingPathComponent(path))
    }
    try benchWrite("*.log\nbuild/\n", to: checkout.appendingPathComponent(".gitignore"))
    for i in 0..<max(2, fileCount / 10) {
        try benchWrite("ignored \(i)\n", to: checkout.appendingPathComponent(i % 2 == 0 ? "logs/run\(i).log" : "build/obj\(i).o"))
    }
    try benchGit(["init", "-q"], in: checkout)
    try benchGit(["add", "-A"], in: checkout)
    try benchGit(["commit", "-q", "-m", "base"], in: checkout)

    // Start-up, each run with a fresh state directory: objects copied from the checkout, and
    // the pipeline materialize -> tracker reading base objects from the source in place.
    let initRuns = 5
    let copyInit = try (0..<initRuns).map { run in
        try benchTime { _ = try WorkspaceTracker(checkout: checkout, stateDirectory: root.appendingPathComponent("state-copy-\(run)")) }
    }
    var materializeTimes: [Double] = []
    var sourceInit: [Double] = []
    for run in 0..<initRuns {
        let materialized = root.appendingPathComponent("materialized-\(run)")
        materializeTimes.append(try benchTime { try WorkspaceTracker.materialize(source: checkout, commit: "HEAD", into: materialized) })
        sourceInit.append(try benchTime {
            _ = try WorkspaceTracker(checkout: materialized, stateDirectory: root.appendingPathComponent("state-source-\(run)"), objectSource: checkout)
        })
        if run < initRuns - 1 { try? FileManager.default.removeItem(at: materialized) }
    }
    // Sources are usually clones, whose objects are packed; the fixture's are loose.
    try benchGit(["repack", "-a", "-d", "-q"], in: checkout)
    let packedSourceInit = try (0..<initRuns).map { run in
        try benchTime {
            _ = try WorkspaceTracker(checkout: root.appendingPathComponent("materialized-\(initRuns - 1)"), stateDirectory: root.appendingPathComponent("state-packed-\(run)"), objectSource: checkout)
        }
    }

    let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: state)
    // For profilers (perf, strace): WARDEN_BENCH_PROFILE=init|steady|edits repeats one operation
    // on the large repository and skips the measurements.
    if let mode = ProcessInfo.processInfo.environment["WARDEN_BENCH_PROFILE"], fileCount > 100 {
        if mode == "init" {
            let materialized = root.appendingPathComponent("materialized-profile")
            try WorkspaceTracker.materialize(source: checkout, commit: "HEAD", into: materialized)
            var times: [Double] = []
            for run in 0..<40 {
                times.append(try benchTime { _ = try WorkspaceTracker(checkout: materialized, stateDirectory: root.appendingPathComponent("state-profile-\(run)"), objectSource: checkout) })
            }
            print("init times", times.map { benchFormat($0) })
        } else {
            for path in files.prefix(20) { try benchWrite("edited\n", to: checkout.appendingPathComponent(path), append: true) }
            for round in 0..<400 {
                if mode == "edits" { try edit(Array(files.prefix(20)), in: checkout, round: round) }
                _ = try tracker.snapshot()
            }
        }
        return
    }
    // The previous implementation: every snapshot compares every file's stat data.
    let scanning = try WorkspaceTracker(checkout: checkout, stateDirectory: root.appendingPathComponent("state-scanning"), tracking: .scanned)

    // The small change.
    let edited = Array(files.prefix(20))
    for path in edited {
        try benchWrite("edited\n", to: checkout.appendingPathComponent(path), append: true)
    }
    for path in files.suffix(5) {
        try FileManager.default.removeItem(at: checkout.appendingPathComponent(path))
    }
    for i in 0..<10 {
        try benchWrite("new \(i)\n", to: checkout.appendingPathComponent("src/new/untracked\(i).swift"))
    }
    let first = try tracker.snapshot()
    _ = try scanning.snapshot()
    // Warm the CLI the same way (it refreshes its own index on the first run).
    _ = try benchGitStatus(checkout)

    // The watched tracker, the scanning one and the CLI alternate so that all see the same
    // machine load; each gets its own edit of the same files before its run.
    var rows: [(String, [Double], [Double], [Double], Int)] = []
    for changed in [0, 1, 20] {
        var watched: [Double] = []
        var scanned: [Double] = []
        var status: [Double] = []
        var fullScans = 0
        for round in 0..<runs {
            let paths = Array(files.dropFirst(round % 7).prefix(changed))
            try edit(paths, in: checkout, round: 3 * round)
            watched.append(try benchTime { _ = try tracker.snapshot() })
            if case .full = tracker.lastScan { fullScans += 1 }
            try edit(paths, in: checkout, round: 3 * round + 1)
            scanned.append(try benchTime { _ = try scanning.snapshot() })
            try edit(paths, in: checkout, round: 3 * round + 2)
            status.append(try benchGitStatus(checkout))
        }
        rows.append((changed == 0 ? "no new change" : "\(changed) file\(changed == 1 ? "" : "s") edited", watched, scanned, status, fullScans))
    }
    let diffTimes = try (0..<min(runs, 10)).map { _ in try benchTime { _ = try tracker.diff() } }

    let label = "workspace \(fileCount) files"
    print("\(label): tracker init median \(benchFormat(benchMedian(copyInit))) ms (objects copied); with objectSource \(benchFormat(benchMedian(sourceInit))) ms (loose source), \(benchFormat(benchMedian(packedSourceInit))) ms (packed source) after materialize \(benchFormat(benchMedian(materializeTimes))) ms; change since base: \(first.sinceBase.count) paths")
    for (name, watched, scanned, status, fullScans) in rows {
        let statusMs = benchMedian(status)
        print("\(label), \(name): watched snapshot() median \(benchFormat(benchMedian(watched))) ms (p10-p90 \(benchFormat(percentile(watched, 0.1)))-\(benchFormat(percentile(watched, 0.9)))), full-scan snapshot() \(benchFormat(benchMedian(scanned))) ms, git status --porcelain \(benchFormat(statusMs)) ms; ratio to git status: watched \(benchFormat(benchMedian(watched) / statusMs)), full scan \(benchFormat(benchMedian(scanned) / statusMs)) (watched snapshots that fell back to a full scan: \(fullScans) of \(runs))")
    }
    print("\(label): diff() (always a full scan) median \(benchFormat(benchMedian(diffTimes))) ms")
}

private func edit(_ paths: [String], in checkout: URL, round: Int) throws {
    for path in paths {
        try benchWrite("round \(round)\n", to: checkout.appendingPathComponent(path), append: true)
    }
}

/// Runs `git status --porcelain` in `checkout` (output discarded) and returns the wall time in ms.
private func benchGitStatus(_ checkout: URL) throws -> Double {
    let arguments = ["git", "-C", checkout.path, "status", "--porcelain"]
    let environment = ["PATH=/usr/bin:/bin", "HOME=\(checkout.path)", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"]
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    var status: Int32 = 0
    let start = DispatchTime.now().uptimeNanoseconds
    let rc = posix_spawn(&pid, "/usr/bin/git", &actions, nil, argv, envp)
    guard rc == 0 else { throw BenchGitFailure(description: "posix_spawn git failed: \(rc)") }
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    guard status == 0 else { throw BenchGitFailure(description: "git status exited with status \(status)") }
    return elapsed
}

private func benchTime(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

private func benchMedian(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

private func benchFormat(_ value: Double) -> String {
    String(format: "%.2f", value)
}

private func benchWrite(_ text: String, to url: URL, append: Bool = false) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    if append, let handle = try? FileHandle(forWritingTo: url) {
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
    } else {
        try Data(text.utf8).write(to: url)
    }
}

private struct BenchGitFailure: Error, CustomStringConvertible {
    var description: String
}

@discardableResult
private func benchGit(_ arguments: [String], in directory: URL) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
    process.arguments = ["-c", "init.defaultBranch=main"] + arguments
    process.currentDirectoryURL = directory
    process.environment = [
        "PATH": "/usr/bin:/bin", "HOME": directory.path,
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
    ]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchGitFailure(description: "git \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
    }
    return data
}
