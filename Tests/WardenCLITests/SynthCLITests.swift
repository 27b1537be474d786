import Foundation
import Testing

/// `warden synth` as a user runs it: the built binary, the real jail, killed with SIGKILL and run again.
@Suite("warden synth command line")
struct SynthCLITests {
    static let files: [String: String] = [
        "shapes/__init__.py": "",
        "shapes/area.py": "def rectangle(w, h):\n    if w < 0 or h < 0:\n        raise ValueError(\"negative\")\n    return w * h\n\n\ndef square(s):\n    return rectangle(s, s)\n",
        "shapes/names.py": "def label(sides):\n    if sides == 3:\n        return \"triangle\"\n    if sides == 4:\n        return \"quad\"\n    return \"polygon\"\n",
        "tests/test_area.py": "import pytest\nfrom shapes.area import rectangle, square\n\ndef test_rectangle():\n    assert rectangle(2, 3) == 6\n\ndef test_square():\n    assert square(3) == 9\n\ndef test_negative():\n    with pytest.raises(ValueError):\n        rectangle(-1, 2)\n",
        "tests/test_names.py": "from shapes.names import label\n\ndef test_triangle():\n    assert label(3) == \"triangle\"\n\ndef test_quad():\n    assert label(4) == \"quad\"\n\ndef test_other():\n    assert label(7) == \"polygon\"\n",
    ]

    @Test("kill -9 in the middle, run again: the suite completes with every task whole and no candidate tried twice; bad flags and paths are named")
    func killAndResume() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-synth-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let repository = scratch.appendingPathComponent("shapes")
        for (path, text) in Self.files {
            let url = repository.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let out = scratch.appendingPathComponent("suite")
        let arguments = ["synth", repository.path, "--out", out.path, "--max-tasks", "4", "--seed", "3"]

        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = arguments
        process.currentDirectoryURL = CLITests.root
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let log = out.appendingPathComponent(".synth/candidates.jsonl")
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").count < 2 {
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "synth finished before it could be killed")

        let resumed = try CLITests.warden(arguments)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("kept 4 (1 two-location)"), "\(resumed.stdout)")
        let tasks = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
        #expect(tasks.count == 4)
        for task in tasks {
            for file in ["task.json", "issue.md", "gold.patch", "test.patch", "repo"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("\(task)/\(file)").path), "\(task) lacks \(file)")
            }
        }
        let rows = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        let keys = try rows.map { row -> String in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any])
            return "\(object["mutations"] ?? "")"
        }
        #expect(Set(keys).count == keys.count, "a candidate was tried twice")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent(".synth").path).allSatisfy { !$0.hasPrefix("partial-") })

        let listed = try CLITests.warden(["tasks", "list", out.path])
        #expect(listed.status == 0 && listed.stdout.contains("4 tasks"), "\(listed.stdout) \(listed.stderr)")
        let missing = try CLITests.warden(["synth", scratch.appendingPathComponent("nowhere").path, "--out", out.path])
        #expect(missing.status != 0 && missing.stderr.contains("no repository or suite task directory at"))
        let zero = try CLITests.warden(["synth", repository.path, "--out", out.path, "--max-tasks", "0"])
        #expect(zero.status != 0 && zero.stderr.contains("--max-tasks must be at least 1"))
    }
}
