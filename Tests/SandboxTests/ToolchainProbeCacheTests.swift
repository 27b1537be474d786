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
        let directory = root.appendingPathComponent("cache/probes")
        let probe = Probe(answer: prefix.path)
        func ask(_ cache: ToolchainProbeCache) -> String? {
            cache.output(of: executable.path, ["-c", "prefix"], selectedBy: [selector.path, root.appendingPathComponent(".python-version").path], run: probe.run)
        }

        #expect(ask(ToolchainProbeCache(directory: directory)) == prefix.path)
        // A later process: answered from the file, without running the probe.
        #expect(ask(ToolchainProbeCache(directory: directory)) == prefix.path)
        #expect(probe.count == 1)

        // `pyenv global 3.12` rewrites the version file.
        try Data("3.12\n".utf8).write(to: selector)
        _ = ask(ToolchainProbeCache(directory: directory))
        #expect(probe.count == 2)
        // A `.python-version` appears where there was none.
        try Data("3.10\n".utf8).write(to: root.appendingPathComponent(".python-version"))
        _ = ask(ToolchainProbeCache(directory: directory))
        #expect(probe.count == 3)
        // The prefix the answer names was reinstalled.
        try FileManager.default.removeItem(at: prefix)
        try FileManager.default.createDirectory(at: prefix, withIntermediateDirectories: true)
        _ = ask(ToolchainProbeCache(directory: directory))
        #expect(probe.count == 4)
        // The executable was replaced.
        try FileManager.default.removeItem(at: executable)
        try Data("#!/bin/sh\n# new\n".utf8).write(to: executable)
        _ = ask(ToolchainProbeCache(directory: directory))
        #expect(probe.count == 5)
        _ = ask(ToolchainProbeCache(directory: directory))
        #expect(probe.count == 5)
    }

    /// Two shells whose PATHs differ (one in a virtualenv) ran the probe on every alternation,
    /// 100-300 ms each through pyenv's shims, because one entry held one environment.
    @Test func alternatingEnvironmentsEachKeepTheirAnswer() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("probes")
        let probe = Probe(answer: "/usr")
        let plain = ["PATH": "/usr/bin:/bin", "HOME": "/root"]
        let inVirtualenv = ["PATH": "/venv/bin:/usr/bin:/bin", "HOME": "/root", "VIRTUAL_ENV": "/venv"]
        for round in 0..<3 {
            for environment in [plain, inVirtualenv] {
                #expect(ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environment, run: probe.run) == "/usr")
            }
            #expect(probe.count == 2, "round \(round)")
        }
    }

    /// Every directory and environment adds an answer: the directory keeps the newest 64.
    @Test func theFileKeepsTheNewestAnswers() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("probes")
        let probe = Probe(answer: "/usr")
        let environments = (0..<(ToolchainProbeCache.entryLimit + 6)).map { ["PATH": "/venv-\($0)/bin:/usr/bin", "HOME": "/root"] }
        for environment in environments {
            _ = ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environment, run: probe.run)
        }
        #expect(try Self.answerFiles(in: directory).count == ToolchainProbeCache.entryLimit)
        // The newest is still answered from the file; the oldest is probed again.
        let runs = probe.count
        _ = ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environments.last!, run: probe.run)
        #expect(probe.count == runs)
        _ = ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], environment: environments.first!, run: probe.run)
        #expect(probe.count == runs + 1)
    }

    static func answerFiles(in directory: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil).filter { $0.pathExtension == "probe" }
    }

    @Test func aDamagedAnswerFileIsIgnoredAndRewritten() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("probes")
        let probe = Probe(answer: "/usr")
        #expect(ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], run: probe.run) == "/usr")
        let files = try Self.answerFiles(in: directory)
        #expect(files.count == 1)
        for damage in ["{not json", "", "warden-toolchain-probe 1\n1.0\n0\n3:abc\n", "warden-toolchain-probe 1\n1.0\n0\n99:short\n4:/usr\n"] {
            try Data(damage.utf8).write(to: files[0])
            #expect(ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], run: probe.run) == "/usr")
            #expect(ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], run: probe.run) == "/usr")
        }
        #expect(probe.count == 5)
    }

    /// Answers hold any text: newlines, colons and digits where lengths go.
    @Test func anAnswerReadsBackExactly() throws {
        let entry = ToolchainProbeCache.Entry(
            key: "/work\u{1F}python3\u{1F}PATH=/a:/b", output: "/opt/py 3\n/opt/venv:é\n12:34\n",
            witnesses: ["/opt/py 3": "1:2:3", "/new\nline": "absent"], storedAt: 1_765_000_000.25)
        #expect(ToolchainProbeCache.Entry(decoding: entry.encoded) == entry)
        let encoded = entry.encoded
        for cut in [1, 10, encoded.count / 2, encoded.count - 1] {
            #expect(ToolchainProbeCache.Entry(decoding: encoded.prefix(cut)) == nil, "cut at \(cut)")
        }
        #expect(ToolchainProbeCache.Entry(decoding: encoded + Data("x".utf8)) == nil)
    }

    /// Two keys whose names collide: the file names the key it holds, and another key's answer is none.
    @Test func anotherKeysAnswerIsNotReused() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-probes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("probes")
        let probe = Probe(answer: "/usr")
        let cache = ToolchainProbeCache(directory: directory)
        _ = cache.output(of: "/bin/sh", ["x"], selectedBy: [], run: probe.run)
        let file = try #require(try Self.answerFiles(in: directory).first)
        var entry = try #require(ToolchainProbeCache.Entry(decoding: Data(contentsOf: file)))
        entry.key += "-other"
        entry.output = "/elsewhere"
        try entry.encoded.write(to: file)
        #expect(ToolchainProbeCache(directory: directory).output(of: "/bin/sh", ["x"], selectedBy: [], run: probe.run) == "/usr")
        #expect(probe.count == 2)
    }
}
