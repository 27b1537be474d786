import Foundation
import Synchronization
import Testing
@testable import Sandbox

/// A probe's answer is reused across processes only while nothing that could change it changed.
@Suite struct ToolchainProbeCacheTests {
    /// Counts probe runs; answers with `answer`.
    final class Probe: Sendable {
        let runs = Mutex(0)
        let answer: String
        init(answer: String) { self.answer = answer }
        func run(_ executable: String, _ arguments: [String]) -> String? {
            runs.withLock { $0 += 1 }
            return answer
        }
        var count: Int { runs.withLock { $0 } }
    }

    @Test func reusesAnAnswerUntilASelectorTheExecutableOrANamedDirectoryChanges() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let prefix = root.appendingPathComponent("versions/3.11")
        let executable = root.appendingPathComponent("shims/python3")
        let selector = root.appendingPathComponent("version")
        try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: executable.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("#!/bin/sh\n".utf8).write(to: executable)
        try Data("3.11\n".utf8).write(to: selector)
        let file = root.appendingPathComponent("cache/probes.json")
        let probe = Probe(answer: prefix.path)
        func ask(_ cache: ToolchainProbeCache) -> String? {
            cache.output(of: executable.path, ["-c", "prefix"], selectedBy: [selector.path, root.appendingPathComponent(".python-version").path], run: probe.run)
        }

        #expect(ask(ToolchainProbeCache(file: file)) == prefix.path)
        // A later process: answered from the file, without running the probe.
        #expect(ask(ToolchainProbeCache(file: file)) == prefix.path)
        #expect(probe.count == 1)

        // `pyenv global 3.12` rewrites the version file.
        try Data("3.12\n".utf8).write(to: selector)
        _ = ask(ToolchainProbeCache(file: file))
        #expect(probe.count == 2)
        // A `.python-version` appears where there was none.
        try Data("3.10\n".utf8).write(to: root.appendingPathComponent(".python-version"))
        _ = ask(ToolchainProbeCache(file: file))
        #expect(probe.count == 3)
        // The prefix the answer names was reinstalled.
        try FileManager.default.removeItem(at: prefix)
        try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
        _ = ask(ToolchainProbeCache(file: file))
        #expect(probe.count == 4)
        // The executable was replaced.
        try FileManager.default.removeItem(at: executable)
        try Data("#!/bin/sh\n# new\n".utf8).write(to: executable)
        _ = ask(ToolchainProbeCache(file: file))
        #expect(probe.count == 5)
        _ = ask(ToolchainProbeCache(file: file))
        #expect(probe.count == 5)
    }

    /// Two shells whose PATHs differ (one in a virtualenv) ran the probe on every alternation,
    /// 100-300 ms each through pyenv's shims, because one entry held one environment.
    @Test func alternatingEnvironmentsEachKeepTheirAnswer() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("probes.json")
        let probe = Probe(answer: "/usr")
        let plain = ["PATH": "/usr/bin:/bin", "HOME": "/root"]
        let inVirtualenv = ["PATH": "/venv/bin:/usr/bin:/bin", "HOME": "/root", "VIRTUAL_ENV": "/venv"]
        for round in 0..<3 {
            for environment in [plain, inVirtualenv] {
                #expect(ToolchainProbeCache(file: file).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environment, run: probe.run) == "/usr")
            }
            #expect(probe.count == 2, "round \(round)")
        }
    }

    /// Every directory and environment adds an answer: the file keeps the newest 64.
    @Test func theFileKeepsTheNewestAnswers() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("probes.json")
        let probe = Probe(answer: "/usr")
        let environments = (0..<(ToolchainProbeCache.entryLimit + 6)).map { ["PATH": "/venv-\($0)/bin:/usr/bin", "HOME": "/root"] }
        for environment in environments {
            _ = ToolchainProbeCache(file: file).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environment, run: probe.run)
        }
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any]
        #expect(stored?.count == ToolchainProbeCache.entryLimit)
        // The newest is still answered from the file; the oldest is probed again.
        let runs = probe.count
        _ = ToolchainProbeCache(file: file).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environments.last!, run: probe.run)
        #expect(probe.count == runs)
        _ = ToolchainProbeCache(file: file).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environments.first!, run: probe.run)
        #expect(probe.count == runs + 1)
    }

    @Test func aDamagedCacheFileIsIgnoredAndRewritten() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("probes.json")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data("{not json".utf8).write(to: file)
        let probe = Probe(answer: "/usr")
        #expect(ToolchainProbeCache(file: file).output(of: "/bin/sh", ["x"], selectedBy: [], run: probe.run) == "/usr")
        #expect(ToolchainProbeCache(file: file).output(of: "/bin/sh", ["x"], selectedBy: [], run: probe.run) == "/usr")
        #expect(probe.count == 1)
    }
}
