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
enum PytestLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        for line in LogText.lines(log) {
            guard let (status, id, fullID) = parseSummaryLine(line) else { continue }
            parsed.record(id, status)
            if let fullID, fullID != id { parsed.record(fullID, status) }
        }
        return parsed
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
