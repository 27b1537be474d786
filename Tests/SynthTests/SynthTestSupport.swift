import Foundation
import Sandbox
@testable import Synth
import Testing
import WardenCore
import Workspace

/// Small repositories in temporary folders, and jails over them.
enum SynthFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func profile() throws -> SandboxProfile {
        try SandboxProfile.load(root.appendingPathComponent("Sandboxes/tests.json").path)
    }

    static func scratch() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-synth-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `files` (path -> text) under `directory`.
    static func write(_ files: [String: String], in directory: URL) throws {
        for (path, text) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
    }
}
