import Foundation
import Sandbox
import Testing
import WardenCore

/// The repository root, found from this file's path so tests run from any directory.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func loadProfile(_ name: String) throws -> SandboxProfile {
    try SandboxProfile.load(repositoryRoot.appendingPathComponent("Sandboxes/\(name).json").path)
}

/// A temporary directory inside a 0700 parent (what `mktemp -d` gives), removed by `cleanup`.
struct TempCheckout {
    let parent: URL
    let path: URL

    init(files: [String: String] = ["README.md": "hello\n"]) throws {
        parent = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        path = parent.appendingPathComponent("checkout")
        try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
        for (name, content) in files {
            let file = path.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: file, atomically: true, encoding: .utf8)
        }
    }

    func cleanup() {
        try? FileManager.default.removeItem(at: parent)
    }
}

/// A shell over a fresh checkout with the given profile, tweaked by `adjust`.
func makeShell(_ checkout: TempCheckout, profile name: String = "agent",
               adjust: (inout SandboxProfile) -> Void = { _ in }) throws -> ShellSession {
    var profile = try loadProfile(name)
    adjust(&profile)
    return ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout.path))
}

/// Runs a host command (outside any jail) and returns its stdout.
@discardableResult
func host(_ command: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", command]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
