import WardenCore

extension LogParser {
    /// The statuses `log` reports, by test id. Never fails: text the parser does not recognise is
    /// ignored, so a garbled log yields fewer tests (which grading counts as failed).
    public func parse(_ log: String) -> ParsedTestLog {
        switch self {
        case .pytest: PytestLogParser.parse(log)
        case .unittest: UnittestLogParser.parse(log)
        case .gotest: GoTestLogParser.parseVerbose(log)
        case .gotestJSON: GoTestLogParser.parseJSON(log)
        case .cargo: CargoLogParser.parse(log)
        case .node: TAPLogParser.parseNode(log)
        case .tap: TAPLogParser.parse(log)
        case .xctest: SwiftTestLogParser.parse(log)
        case .junit: JUnitLogParser.parse(log)
        }
    }
}

/// Text clean-up shared by the line-based parsers.
enum LogText {
    /// The lines of `log` (LF or CRLF) as a terminal would show them: ANSI escape sequences removed, and for a
    /// line rewritten with carriage returns, only the text after the last one.
    static func lines(_ log: String) -> [String] {
        let clean = stripANSI(log)
        return clean.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map { raw in
            var line = raw
            while line.last == "\r" { line = line.dropLast() }
            if let cr = line.lastIndex(of: "\r") {
                let after = line[line.index(after: cr)...]
                if !after.isEmpty { line = after }
            }
            return String(line)
        }
    }

    /// `text` without ANSI escape sequences (CSI colour codes, OSC titles and links, two-byte escapes).
    static func stripANSI(_ text: String) -> String {
        guard text.unicodeScalars.contains("\u{1B}") else { return text }
        var out = String.UnicodeScalarView()
        var scalars = text.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar == "\u{1B}" else {
                out.append(scalar)
                continue
            }
            guard let kind = scalars.next() else { break }
            switch kind {
            case "[":
                // CSI: parameter and intermediate bytes, then one final byte in 0x40...0x7E.
                while let next = scalars.next() {
                    if (0x40...0x7E).contains(next.value) { break }
                }
            case "]":
                // OSC: ends with BEL or ESC \.
                while let next = scalars.next() {
                    if next == "\u{07}" { break }
                    if next == "\u{1B}" {
                        _ = scalars.next()
                        break
                    }
                }
            default:
                break
            }
        }
        return String(out)
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmedSpaces: SubSequence {
        let start = firstIndex { $0 != " " && $0 != "\t" } ?? endIndex
        let end = lastIndex { $0 != " " && $0 != "\t" }.map { index(after: $0) } ?? start
        return self[start..<Swift.max(start, end)]
    }

    /// The number of leading spaces (a tab counts as four).
    var indentation: Int {
        var count = 0
        for character in self {
            if character == " " { count += 1 } else if character == "\t" { count += 4 } else { break }
        }
        return count
    }
}
