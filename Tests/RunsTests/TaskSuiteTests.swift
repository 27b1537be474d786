import Foundation
import Tasks
import Testing
import WardenCore

@Suite("Task files")
struct TaskSuiteTests {
    @Test("an unknown log_parser is a load problem naming the file and line, never silently pytest")
    func unknownLogParser() throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-suite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("tasks.jsonl")
        let rows = [
            #"{"instance_id": "a__b-1", "repo": "a/b", "base_commit": "abc", "problem_statement": "x", "log_parser": "pytset"}"#,
            #"{"instance_id": "a__b-2", "repo": "a/b", "base_commit": "abc", "problem_statement": "x", "log_parser": "cargo"}"#,
        ]
        try rows.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        let suite = try TaskSuite.load(file.path, repos: scratch, cache: scratch)
        let problem = try #require(suite.problems.first { $0.line == 1 })
        #expect(problem.description.contains(#"log_parser "pytset" is unknown"#))
        #expect(problem.description.contains(file.path))
        // The other row loads (its repository is missing, which is its own problem).
        #expect(!suite.problems.contains { $0.line == 2 && $0.message.contains("log_parser") })
    }
}
