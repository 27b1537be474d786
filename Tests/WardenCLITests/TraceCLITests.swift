import Foundation
import Testing

/// `warden trace` as a user runs it: the built binary, its resource bundle, the real jail.
@Suite("warden trace command line")
struct TraceCLITests {
    @Test("--program writes traces.jsonl and the CWM text; bad flags name what is missing")
    func program() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("warden-trace-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let outcome = try CLITests.warden(["trace", "--program", "Tests/TracesTests/Golden/strawberry.py", "--entry", "count_letters",
                                           "--args", #"["strawberry", "r"]"#, "--out", out.path])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout == "count_letters: returned, 25 frames\n")
        let text = try String(contentsOf: out.appendingPathComponent("cwm/0001.txt"), encoding: .utf8)
        #expect(text.hasSuffix(#"<|arg_sep|>"3"<|frame_sep|><|end_of_text|>"#))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("traces.jsonl").path))

        let neither = try CLITests.warden(["trace"])
        #expect(neither.status != 0 && neither.stderr.contains("--program FILE --entry FUNC, a SUITE, or --repo PATH --tests ID..."))
        let noEntry = try CLITests.warden(["trace", "--program", "x.py"])
        #expect(noEntry.status != 0 && noEntry.stderr.contains("--program needs --entry"))
    }

    @Test("--repo traces the named tests of a repository at its HEAD; an unknown id is a row of its own")
    func repository() throws {
        let repository = FileManager.default.temporaryDirectory.appendingPathComponent("warden-trace-repo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: repository) }
        try FileManager.default.createDirectory(at: repository.appendingPathComponent("pkg"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: repository.appendingPathComponent("tests"), withIntermediateDirectories: true)
        try "def add(a, b):\n    return a + b\n".write(to: repository.appendingPathComponent("pkg/__init__.py"), atomically: true, encoding: .utf8)
        try "from pkg import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
            .write(to: repository.appendingPathComponent("tests/test_add.py"), atomically: true, encoding: .utf8)
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/bin/sh")
        git.arguments = ["-c", "git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm init"]
        git.currentDirectoryURL = repository
        try git.run()
        git.waitUntilExit()
        #expect(git.terminationStatus == 0)
        let out = repository.appendingPathComponent("out")
        let outcome = try CLITests.warden(["trace", "--repo", repository.path, "--tests", "tests/test_add.py::test_add", "tests/test_add.py::test_gone",
                                           "--out", out.path])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("tests/test_add.py::test_add: passed, 6 frames"))
        #expect(outcome.stdout.contains("tests/test_add.py::test_gone: error (no such test"))
        let text = try String(contentsOf: out.appendingPathComponent("cwm/0001.txt"), encoding: .utf8)
        #expect(text.contains("<|return_sep|><|action_sep|>    return a + b\n<|arg_sep|>\"5\"<|frame_sep|>"))
        let failing = try CLITests.warden(["trace", "--repo", repository.path, "--out", out.path])
        #expect(failing.status != 0 && failing.stderr.contains("--repo traces the tests you name"))
    }
}
