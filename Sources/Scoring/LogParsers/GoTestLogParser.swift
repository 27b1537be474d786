import Foundation

/// `go test` output, verbose text or JSON events. Ids are test names as Go prints them, subtests
/// included (`TestTable/small_numbers`).
enum GoTestLogParser {
    /// `go test -v`: `--- PASS: TestX (0.00s)`, `--- FAIL: ...`, `--- SKIP: ...`, indented for subtests.
    /// The line must end right after the duration, so a test that prints `--- FAIL: TestY (0.00s) …`
    /// with more text after it does not invent a result.
    static func parseVerbose(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        for line in LogText.lines(log) {
            let text = line.trimmedSpaces
            guard text.hasPrefix("--- "), text.hasSuffix("s)") else { continue }
            let kinds: [(String, TestStatus)] = [("--- PASS: ", .passed), ("--- FAIL: ", .failed), ("--- SKIP: ", .skipped)]
            guard let (prefix, status) = kinds.first(where: { text.hasPrefix($0.0) }) else { continue }
            let rest = text.dropFirst(prefix.count)
            guard let open = rest.range(of: " (", options: .backwards) else { continue }
            let duration = rest[open.upperBound..<rest.index(before: rest.endIndex)]
            guard duration.dropLast().allSatisfy({ $0.isNumber || $0 == "." }), duration.count >= 2 else { continue }
            let name = rest[..<open.lowerBound]
            guard !name.isEmpty, !name.contains(" ") else { continue }
            parsed.record(String(name), status)
        }
        return parsed
    }

    private struct Event: Decodable {
        var Action: String
        var Package: String?
        var Test: String?
    }

    /// `go test -json`: events with `Action` `pass`, `fail` or `skip` and a `Test` field. Lines that
    /// are not JSON (build errors, other output) are skipped.
    ///
    /// Before Go 1.20, test2json turned a test's own output line that looks like `--- FAIL: TestX`
    /// into a result event for `TestX`; results only count for tests that had a `run` event.
    static func parseJSON(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        var started: Set<String> = []
        let decoder = JSONDecoder()
        for line in LogText.lines(log) {
            let text = line.trimmedSpaces
            guard text.hasPrefix("{"), text.contains("\"Action\"") else { continue }
            guard let event = try? decoder.decode(Event.self, from: Data(text.utf8)), let test = event.Test else { continue }
            let key = (event.Package ?? "") + "\u{0}" + test
            if event.Action == "run" { started.insert(key) }
            guard started.contains(key) else { continue }
            switch event.Action {
            case "pass": parsed.record(test, .passed)
            case "fail": parsed.record(test, .failed)
            case "skip": parsed.record(test, .skipped)
            default: break
            }
        }
        return parsed
    }
}
