import Foundation

/// `swift test` output: XCTest and Swift Testing results in one log.
///
/// - XCTest: `Test Case 'Class.testX' passed|failed|skipped (0.001 seconds)` (Linux) gives
///   `Class.testX`; `Test Case '-[Module.Class testX]' passed ...` (Apple platforms) gives
///   `Module.Class.testX`.
/// - Swift Testing: `✔ Test name() passed after ...`, `✘ Test "Display name" failed after ...`,
///   `➜ Test name() skipped: "reason"`, `✔ Test name(x:) with 3 test cases passed after ...`; the id
///   is the display name without its quotes, or the function name as printed (`name(x:)`). A pass
///   `with N known issues` is `XFAIL`. Progress (`started`, `recorded an issue`), suite and
///   run-summary lines are ignored.
enum SwiftTestLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        for line in LogText.lines(log) {
            let text = line.trimmedSpaces
            if text.hasPrefix("Test Case '") {
                if let (id, status) = parseXCTest(text) { parsed.record(id, status) }
            } else if let (id, status) = parseSwiftTesting(text) {
                parsed.record(id, status)
            }
        }
        return parsed
    }

    private static func parseXCTest(_ text: Substring) -> (String, TestStatus)? {
        let body = text.dropFirst("Test Case '".count)
        guard let quote = body.range(of: "' ") else { return nil }
        var name = body[..<quote.lowerBound]
        let verdict = body[quote.upperBound...]
        let status: TestStatus
        if verdict.hasPrefix("passed (") {
            status = .passed
        } else if verdict.hasPrefix("failed (") {
            status = .failed
        } else if verdict.hasPrefix("skipped (") {
            status = .skipped
        } else {
            return nil
        }
        if name.hasPrefix("-["), name.hasSuffix("]") {
            name = name.dropFirst(2).dropLast()
            return (name.replacingOccurrences(of: " ", with: "."), status)
        }
        return (String(name), status)
    }

    private static func parseSwiftTesting(_ text: Substring) -> (String, TestStatus)? {
        // A one-character symbol (✔ ✘ ➜ ━ or an SF Symbol on Apple platforms), then "Test ".
        guard let space = text.firstIndex(of: " "), text.distance(from: text.startIndex, to: space) == 1,
              let symbol = text.first, !symbol.isLetter, !symbol.isNumber
        else { return nil }
        let rest = text[text.index(after: space)...]
        guard rest.hasPrefix("Test "), !rest.hasPrefix("Test run "), !rest.hasPrefix("Test case ") else { return nil }
        let afterKeyword = rest.dropFirst("Test ".count)

        let name: Substring
        var verdict: Substring
        if afterKeyword.hasPrefix("\"") {
            guard let (quoted, end) = quotedString(afterKeyword) else { return nil }
            name = quoted
            verdict = afterKeyword[end...]
        } else {
            // A function name as printed: `name(label:)`, or a raw identifier in backticks.
            var searchFrom = afterKeyword.startIndex
            if afterKeyword.hasPrefix("`"), let close = afterKeyword.dropFirst().firstIndex(of: "`") {
                searchFrom = close
            }
            let cut = afterKeyword[searchFrom...].firstIndex(of: " ") ?? afterKeyword.endIndex
            name = afterKeyword[..<cut]
            verdict = afterKeyword[cut...]
        }
        verdict = verdict.trimmedSpaces
        if verdict.hasPrefix("with "), let range = verdict.range(of: " test case") ?? verdict.range(of: " argument") {
            // "with 3 test cases passed after ..." (a parameterized test's overall result).
            guard let next = verdict[range.upperBound...].firstIndex(of: " ") else { return nil }
            verdict = verdict[next...].trimmedSpaces
        }
        guard !name.isEmpty else { return nil }
        if verdict.hasPrefix("passed after") {
            return (String(name), verdict.contains("known issue") ? .xfail : .passed)
        }
        if verdict.hasPrefix("failed after") { return (String(name), .failed) }
        if verdict == "skipped" || verdict.hasPrefix("skipped.") || verdict.hasPrefix("skipped:") {
            return (String(name), .skipped)
        }
        return nil
    }

    /// The contents of the double-quoted string at the start of `text` (with `\"` unescaped) and the
    /// index after its closing quote.
    private static func quotedString(_ text: Substring) -> (Substring, Substring.Index)? {
        var result = ""
        var index = text.index(after: text.startIndex)
        var escaped = false
        while index < text.endIndex {
            let character = text[index]
            if escaped {
                result.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                return (Substring(result), text.index(after: index))
            } else {
                result.append(character)
            }
            index = text.index(after: index)
        }
        return nil
    }
}
