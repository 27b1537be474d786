import Foundation
import Workspace

/// Compares `WorkspaceTracker.snapshot()` with `git status --porcelain` on a small and a 5,000-file repository.
///
/// Each repository gets a small change before measuring (20 files edited, 5 deleted, 10
/// untracked added) and 10% ignored files. Three timings per size, medians of 30 runs:
/// - `snapshot (steady)`: the change is in place, nothing new since the previous snapshot;
/// - `snapshot (20 edits)`: 20 files rewritten before each run (the cost after a typical command);
/// - `git status --porcelain`: the CLI, spawned with Foundation's `Process` (spawn cost included).
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

    let initStart = DispatchTime.now().uptimeNanoseconds
    let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: state)
    let initMs = Double(DispatchTime.now().uptimeNanoseconds - initStart) / 1e6

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
    // Warm the CLI the same way (it refreshes its own index on the first run).
    _ = try benchGit(["status", "--porcelain"], in: checkout)

    let steady = try (0..<runs).map { _ in try benchTime { _ = try tracker.snapshot() } }
    var round = 0
    let withEdits = try (0..<runs).map { _ -> Double in
        round += 1
        for path in edited {
            try benchWrite("round \(round)\n", to: checkout.appendingPathComponent(path), append: true)
        }
        return try benchTime { _ = try tracker.snapshot() }
    }
    let status = try (0..<runs).map { _ in try benchTime { _ = try benchGit(["status", "--porcelain"], in: checkout) } }
    let diffTimes = try (0..<min(runs, 10)).map { _ in try benchTime { _ = try tracker.diff() } }

    let steadyMs = benchMedian(steady)
    let editsMs = benchMedian(withEdits)
    let statusMs = benchMedian(status)
    let label = "workspace \(fileCount) files"
    print("\(label): tracker init \(benchFormat(initMs)) ms; change since base: \(first.sinceBase.count) paths")
    print("\(label): snapshot (steady)   median \(benchFormat(steadyMs)) ms  ratio to git status \(benchFormat(steadyMs / statusMs))")
    print("\(label): snapshot (20 edits) median \(benchFormat(editsMs)) ms  ratio to git status \(benchFormat(editsMs / statusMs))")
    print("\(label): git status --porcelain median \(benchFormat(statusMs)) ms (process spawn included)")
    print("\(label): diff() incl. snapshot median \(benchFormat(benchMedian(diffTimes))) ms")
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
