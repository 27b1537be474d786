import Foundation

/// `python -m unittest -v` output.
///
/// The id is the text before ` ... `: `test_x (module.Class.test_x)` (Python 3.11+) or
/// `test_x (module.Class)` (older). Handled beyond the plain `id ... status` line:
/// - a test with a docstring prints `id` alone, then the docstring's first line before ` ... `;
/// - output printed by the test lands between ` ... ` and the status (`... noiseok`) or pushes the
///   status to a later line;
/// - a failing subtest prints an indented `id (i=2) ... FAIL` line: it fails the parent id;
/// - the `FAIL: id` / `ERROR: id` / `UNEXPECTED SUCCESS: id` headers of the final report are read
///   too, so a test whose result line was garbled still fails, and a fake `ok` conflicts with them.
enum UnittestLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        let lines = LogText.lines(log)
        /// A bare `id` line that may be followed by a docstring line carrying the result.
        var headerAwaitingDocstring: String?
        /// A test whose status has not been printed yet, and the text after its ` ... `.
        var pending: (id: String, tail: Substring)?

        func settlePendingBySuffix() {
            if let (id, tail) = pending, let status = statusSuffix(tail) {
                parsed.record(id, status)
            }
            pending = nil
        }

        func report(_ head: Substring, _ tail: Substring) {
            let id: String
            if let testID = testID(head.trimmedSpaces) {
                id = testID
            } else if let header = headerAwaitingDocstring {
                id = header
            } else {
                return
            }
            headerAwaitingDocstring = nil
            settlePendingBySuffix()
            if let status = exactStatus(tail.trimmedSpaces) {
                parsed.record(id, status)
            } else {
                pending = (id, tail)
            }
        }

        for (number, line) in lines.enumerated() {
            if let separator = line.range(of: " ... ") {
                // Python <= 3.10 prints nothing for a failed subtest, so the next test can start
                // on the same line: `test_a (m.C) ... test_b (m.C) ... ok`.
                var head = line[..<separator.lowerBound]
                var tail = line[separator.upperBound...]
                while let next = tail.range(of: " ... "), let (output, nextHead) = splitTrailingTestID(tail[..<next.lowerBound]) {
                    report(head, output)
                    head = nextHead
                    tail = tail[next.upperBound...]
                }
                report(head, tail)
                continue
            }
            let trimmed = line.trimmedSpaces
            if let (id, _) = pending, let status = exactStatus(trimmed) {
                parsed.record(id, status)
                pending = nil
                continue
            }
            if number > 0, lines[number - 1].hasPrefix("======"), let (status, id) = reportHeader(line) {
                settlePendingBySuffix()
                parsed.record(id, status)
                continue
            }
            if line.indentation == 0, isTestHeader(trimmed) {
                headerAwaitingDocstring = String(trimmed)
            } else {
                headerAwaitingDocstring = nil
            }
        }
        settlePendingBySuffix()
        return parsed
    }

    /// The test id in `name (dotted.path)`, or in a subtest's `name (dotted.path) (params)`, whose
    /// result belongs to the parent test.
    static func testID(_ text: Substring) -> String? {
        guard let open = text.firstIndex(of: "("), open > text.startIndex,
              text[text.index(before: open)] == " ",
              let close = text[open...].firstIndex(of: ")")
        else { return nil }
        let name = text[..<text.index(before: open)]
        let path = text[text.index(after: open)..<close]
        guard !name.isEmpty, !name.contains(" "), !path.isEmpty,
              path.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." })
        else { return nil }
        return String(text[...close])
    }

    /// Splits `output test_b (m.C)` into the output and the test id that ends it.
    private static func splitTrailingTestID(_ text: Substring) -> (Substring, Substring)? {
        guard text.hasSuffix(")"), let open = text.range(of: " (", options: .backwards) else { return nil }
        let nameStart = text[..<open.lowerBound].lastIndex(of: " ").map { text.index(after: $0) } ?? text.startIndex
        let candidate = text[nameStart...]
        guard testID(candidate)?.count == candidate.count else { return nil }
        return (text[..<nameStart], candidate)
    }

    private static func isTestHeader(_ text: Substring) -> Bool {
        testID(text).map { $0.count == text.count } ?? false
    }

    private static func exactStatus(_ text: Substring) -> TestStatus? {
        switch text {
        case "ok": .passed
        case "FAIL": .failed
        case "ERROR": .error
        case "expected failure": .xfail
        case "unexpected success": .xpass
        default: text == "skipped" || text.hasPrefix("skipped '") || text.hasPrefix("skipped \"") ? .skipped : nil
        }
    }

    /// The status at the end of a line where the test's own output came first (`... noiseok`).
    private static func statusSuffix(_ tail: Substring) -> TestStatus? {
        let text = tail.trimmedSpaces
        if let status = exactStatus(text) { return status }
        let suffixes: [(String, TestStatus)] = [
            ("unexpected success", .xpass), ("expected failure", .xfail),
            ("ERROR", .error), ("FAIL", .failed), ("ok", .passed),
        ]
        return suffixes.first { text.hasSuffix($0.0) }?.1
    }

    /// A header of the final report: `FAIL: id`, `ERROR: id`, `UNEXPECTED SUCCESS: id`.
    private static func reportHeader(_ line: String) -> (TestStatus, String)? {
        let kinds: [(String, TestStatus)] = [("FAIL: ", .failed), ("ERROR: ", .error), ("UNEXPECTED SUCCESS: ", .xpass)]
        for (prefix, status) in kinds where line.hasPrefix(prefix) {
            guard let id = testID(line.dropFirst(prefix.count).trimmedSpaces) else { return nil }
            return (status, id)
        }
        return nil
    }
}
