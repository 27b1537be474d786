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
        #expect(neither.status != 0 && neither.stderr.contains("--program FILE --entry FUNC or a SUITE"))
        let noEntry = try CLITests.warden(["trace", "--program", "x.py"])
        #expect(noEntry.status != 0 && noEntry.stderr.contains("--program needs --entry"))
    }
}
