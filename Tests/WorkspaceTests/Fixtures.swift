import Foundation
import Testing
import WardenCore
import Workspace

/// A temporary directory removed when the value is deinitialised.
final class TempDirectory {
    let url: URL

    init(mode: Int = 0o755) throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("warden-ws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    func path(_ component: String) -> URL { url.appendingPathComponent(component) }
}

struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs the git CLI with the user's configuration shut out. Tests only: fixtures and `git apply` checks.
@discardableResult
func git(_ arguments: [String], in directory: URL, allowFailure: Bool = false) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
    process.arguments = ["-c", "init.defaultBranch=main", "-c", "core.hooksPath=/dev/null"] + arguments
    process.currentDirectoryURL = directory
    process.environment = [
        "PATH": "/usr/bin:/bin",
        "HOME": directory.path,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.com",
        "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.com",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    ]
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    if process.terminationStatus != 0 && !allowFailure {
        throw CommandFailure(description: "git \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self))")
    }
    return String(decoding: output, as: UTF8.self)
}

func write(_ text: String, to url: URL) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(text.utf8).write(to: url)
}

func read(_ url: URL) throws -> String {
    String(decoding: try Data(contentsOf: url), as: UTF8.self)
}

/// A repository with one commit holding `files`, plus a state directory outside it.
struct Fixture {
    let root: TempDirectory
    let checkout: URL
    let state: URL
    let baseCommit: String

    init(files: [String: String], rootMode: Int = 0o755) throws {
        root = try TempDirectory(mode: rootMode)
        checkout = root.path("checkout")
        state = root.path("state")
        try FileManager.default.createDirectory(at: checkout, withIntermediateDirectories: true)
        try git(["init", "-q"], in: checkout)
        for (path, text) in files {
            try write(text, to: checkout.appendingPathComponent(path))
        }
        try git(["add", "-A"], in: checkout)
        try git(["commit", "-q", "-m", "base", "--allow-empty"], in: checkout)
        baseCommit = try git(["rev-parse", "HEAD"], in: checkout).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func file(_ path: String) -> URL { checkout.appendingPathComponent(path) }

    func tracker() throws -> WorkspaceTracker {
        try WorkspaceTracker(checkout: checkout, stateDirectory: state)
    }
}

func paths(_ changes: [FileChange], _ status: ChangeStatus) -> Set<String> {
    Set(changes.filter { $0.status == status }.map(\.path))
}

func allPaths(_ changes: [FileChange]) -> Set<String> {
    Set(changes.map(\.path))
}
