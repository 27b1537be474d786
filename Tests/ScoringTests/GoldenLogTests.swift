import Foundation
import Testing
import WardenCore

@testable import Scoring

/// Logs of the real frameworks (made by running them on small sample suites and on the starter
/// tasks) and the id -> status maps they must parse to, checked by hand against each log.
enum Golden {
    static var directory: URL {
        get throws {
            try #require(Bundle.module.url(forResource: "Golden", withExtension: nil))
        }
    }

    /// Every `<parser>-<case>` with a `.log` and an `.expected.json`.
    static let cases: [String] = {
        guard let url = Bundle.module.url(forResource: "Golden", withExtension: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: url.path)
        else { return [] }
        return names.filter { $0.hasSuffix(".expected.json") }.map { String($0.dropLast(".expected.json".count)) }.sorted()
    }()

    /// Task lists copied from Tasks/starter for the logs of real starter-task runs.
    static let starterCases: [String] = {
        guard let url = Bundle.module.url(forResource: "Golden", withExtension: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: url.path)
        else { return [] }
        return names.filter { $0.hasSuffix(".task.json") }.map { String($0.dropLast(".task.json".count)) }.sorted()
    }()

    /// The parser a golden file name starts with; the longest name wins (`gotest-json` over `gotest`).
    static func parser(for name: String) throws -> LogParser {
        let matches = LogParser.allCases.filter { name.hasPrefix($0.rawValue + "-") }
        return try #require(matches.max { $0.rawValue.count < $1.rawValue.count })
    }

    static func log(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name + ".log"), encoding: .utf8)
    }

    struct Expected: Decodable {
        var statuses: [String: TestStatus]
        var conflicting: [String]
    }

    static func expected(_ name: String) throws -> Expected {
        let data = try Data(contentsOf: directory.appendingPathComponent(name + ".expected.json"))
        return try JSONDecoder().decode(Expected.self, from: data)
    }

    struct StarterTask: Decodable {
        var FAIL_TO_PASS: [String]
        var PASS_TO_PASS: [String]
    }

    static func task(_ name: String) throws -> StarterTask {
        let data = try Data(contentsOf: directory.appendingPathComponent(name + ".task.json"))
        return try JSONDecoder().decode(StarterTask.self, from: data)
    }
}

@Suite("Golden logs")
struct GoldenLogTests {
    @Test("there is a golden log for every parser")
    func everyParserCovered() throws {
        let covered = Set(try Golden.cases.map { try Golden.parser(for: $0) })
        #expect(covered == Set(LogParser.allCases))
        #expect(Golden.cases.count >= 20)
    }

    @Test("each golden log parses exactly to its expected map", arguments: Golden.cases)
    func parsesToExpected(name: String) throws {
        let parser = try Golden.parser(for: name)
        let parsed = parser.parse(try Golden.log(name))
        let expected = try Golden.expected(name)
        let missing = expected.statuses.keys.filter { parsed.statuses[$0] == nil }.sorted()
        let extra = parsed.statuses.keys.filter { expected.statuses[$0] == nil }.sorted()
        let wrong = expected.statuses.keys.filter { parsed.statuses[$0] != nil && parsed.statuses[$0] != expected.statuses[$0] }
            .sorted().map { "\($0): \(parsed.statuses[$0]!.rawValue) != \(expected.statuses[$0]!.rawValue)" }
        #expect(missing.isEmpty, "missing from the parse: \(missing)")
        #expect(extra.isEmpty, "not expected: \(extra)")
        #expect(wrong.isEmpty, "wrong status: \(wrong)")
        #expect(parsed.conflicting == Set(expected.conflicting))
    }

    /// Maps written by SWE-bench 5.0.2's own `parse_log_pytest` on the same logs.
    static let swebenchCases: [String] = {
        guard let url = Bundle.module.url(forResource: "Golden", withExtension: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: url.path)
        else { return [] }
        return names.filter { $0.hasSuffix(".swebench.json") }.map { String($0.dropLast(".swebench.json".count)) }.sorted()
    }()

    @Test("pytest: every id SWE-bench 5.0.2's parser finds has the same status here", arguments: swebenchCases)
    func agreesWithSWEBench(name: String) throws {
        let data = try Data(contentsOf: try Golden.directory.appendingPathComponent(name + ".swebench.json"))
        let official = try JSONDecoder().decode([String: TestStatus].self, from: data)
        let parsed = LogParser.pytest.parse(try Golden.log(name))
        #expect(!official.isEmpty)
        for (id, status) in official {
            #expect(parsed.statuses[id] == status, "\(id)")
        }
        // Warden's extra ids are full parametrized ids and XPASS results only.
        for (id, status) in parsed.statuses where official[id] == nil {
            #expect(status == .xpass || id.contains(" "), "\(id)")
        }
    }

    @Test("starter-task runs: FAIL_TO_PASS fail and PASS_TO_PASS pass before the fix, all pass after", arguments: Golden.starterCases)
    func starterTaskRuns(name: String) throws {
        let task = try Golden.task(name)
        let parser = try Golden.parser(for: name)

        let before = parser.parse(try Golden.log(name))
        for id in task.FAIL_TO_PASS {
            #expect(before.statuses[id] == .failed || before.statuses[id] == .error, "\(id): \(String(describing: before.statuses[id]))")
        }
        for id in task.PASS_TO_PASS {
            #expect(before.statuses[id] == .passed, "\(id): \(String(describing: before.statuses[id]))")
        }
        let ungraded = grade(parsed: before, failToPass: task.FAIL_TO_PASS, passToPass: task.PASS_TO_PASS, testExitCode: 1)
        #expect(ungraded.resolution == .no)
        #expect(ungraded.error == nil)
        #expect(ungraded.testsStatus.failToPass.failure == task.FAIL_TO_PASS)
        #expect(ungraded.testsStatus.passToPass.success == task.PASS_TO_PASS)

        let goldURL = try Golden.directory.appendingPathComponent(name + "-gold.log")
        guard FileManager.default.fileExists(atPath: goldURL.path) else { return }
        let after = parser.parse(try Golden.log(name + "-gold"))
        let graded = grade(parsed: after, failToPass: task.FAIL_TO_PASS, passToPass: task.PASS_TO_PASS, testExitCode: 0)
        #expect(graded.resolution == .full)
        #expect(graded.testsStatus.failToPass.success == task.FAIL_TO_PASS)
    }
}
