import Foundation

/// `pytest -rA` short test summary lines, read the way SWE-bench 5.x's `parse_log_pytest` reads them.
///
/// SWE-bench takes a line that starts with a status word and keeps the second whitespace-separated
/// token as the id (for `FAILED id - msg` that is the id before ` - `). Warden does the same, with
/// three differences that only add information:
/// - colour codes are stripped first (SWE-bench finds nothing in a `--color=yes` log);
/// - a parametrized id with spaces (`test_x[a b]`), which SWE-bench cuts to `test_x[a`, is also
///   recorded in full, so task files may list either form;
/// - `XPASS` lines are recorded (SWE-bench ignores them; both count them as not passed), and
///   `SKIPPED [n] file:line: reason` lines, which name no test, are ignored (SWE-bench records the
///   meaningless id `[n]`).
/// A collection error, `ERROR tests/test_x.py - ImportError...`, gives the file id `ERROR`.
///
/// When the log has pytest's `short test summary info` sections, only lines inside them report
/// statuses (for a real pytest log SWE-bench reads the same lines). A status line outside them
/// (printed by the code under test, say from an `atexit` hook once pytest has restored stdout)
/// cannot add a test or change a status; if it contradicts the summary, the id becomes
/// conflicting. A log without any summary header is read whole, as SWE-bench does.
enum PytestLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        let lines = LogText.lines(log)
        let inSummary = summaryLines(lines)
        var outside: [(String, TestStatus)] = []
        for (number, line) in lines.enumerated() {
            guard let (status, id, fullID) = parseSummaryLine(line) else { continue }
            let ids = [id] + (fullID.map { $0 == id ? [] : [$0] } ?? [])
            if inSummary?.contains(number) ?? true {
                for id in ids { parsed.record(id, status) }
            } else {
                outside += ids.map { ($0, status) }
            }
        }
        for (id, status) in outside where parsed.statuses[id] != nil && parsed.statuses[id] != status {
            parsed.conflicting.insert(id)
        }
        return parsed
    }

    /// The line numbers inside `===== short test summary info =====` sections (up to the next `==`
    /// separator line), or nil when the log has none.
    private static func summaryLines(_ lines: [String]) -> Set<Int>? {
        var result: Set<Int> = []
        var inside = false
        var found = false
        for (number, line) in lines.enumerated() {
            if line.hasPrefix("=") {
                let title = line.trimmingCharacters(in: ["=", " "])
                inside = title == "short test summary info"
                found = found || inside
                continue
            }
            if inside { result.insert(number) }
        }
        return found ? result : nil
    }

    /// The status, SWE-bench id and (when it differs) full id of one short-summary line.
    static func parseSummaryLine(_ line: String) -> (TestStatus, String, String?)? {
        let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard tokens.count >= 2, let status = TestStatus(rawValue: String(tokens[0])) else { return nil }
        // SWE-bench only sees lines that start with the status word itself.
        guard line.hasPrefix(tokens[0]) else { return nil }
        let id = tokens[1]
        if status == .skipped, id.hasPrefix("[") { return nil }
        return (status, String(id), fullParametrizedID(line: line, firstToken: id))
    }

    /// For an id cut inside its parameter brackets (`test_x[a` from `test_x[a b] - msg`), the id up
    /// to the `]` that ends the line or precedes ` - `.
    private static func fullParametrizedID(line: String, firstToken: Substring) -> String? {
        guard firstToken.contains("["), !firstToken.hasSuffix("]") else { return nil }
        let rest = line[firstToken.startIndex...]
        var index = rest.startIndex
        while let close = rest[index...].firstIndex(of: "]") {
            let after = rest[rest.index(after: close)...]
            if after.trimmedSpaces.isEmpty || after.hasPrefix(" - ") {
                return String(rest[...close])
            }
            index = rest.index(after: close)
        }
        return nil
    }
}
