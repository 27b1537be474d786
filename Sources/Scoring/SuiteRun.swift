import Foundation
import Sandbox
import WardenCore

/// One run of a repository's tests in a jail the caller keeps open, parsed as scoring parses it.
public struct SuiteRunResult: Sendable, Hashable {
    public var statuses: [String: TestStatus]
    /// The lines between the test markers: what the runner printed.
    public var output: String
    public var timedOut: Bool
    public var exitCode: Int32?
    public var seconds: Double
}

extension Evaluator {
    /// Runs `command` (already expanded) in `shell` over its checkout, with the same script,
    /// markers and parsers as `evaluate`, but no checkout, patch or grading of its own: for
    /// callers that run a suite many times over one checkout (`warden synth`). Python writes no
    /// bytecode, so a file changed within the same second is never read from a stale cache.
    public static func runSuite(_ command: String, parser: LogParser, in shell: ShellSession, timeout: Double) async throws -> SuiteRunResult {
        let nonce = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let script = "export PYTHONDONTWRITEBYTECODE=1\n" + testScript(testPatch: "", testCommand: command, parser: parser, nonce: nonce)
        let run = try await shell.run(script, timeout: timeout, spill: true)
        let log = try fullOutput(of: run)
        let output = testOutput(of: log)
        var parsed = parser.parse(output)
        if parser == .pytest {
            parsed = confirm(parsed, by: JUnitLogParser.parsePytestReport(report(in: log, nonce: nonce)))
        }
        let exitCode = log.split(separator: "\n").last { $0.hasPrefix(exitCodePrefix) }.flatMap { Int32($0.dropFirst(exitCodePrefix.count)) }
        return SuiteRunResult(statuses: run.timedOut ? [:] : parsed.statuses, output: output, timedOut: run.timedOut, exitCode: exitCode,
                              seconds: testMilliseconds(log) / 1000)
    }
}
