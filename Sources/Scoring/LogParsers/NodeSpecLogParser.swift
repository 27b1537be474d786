/// `node --test` output from the spec reporter (Node 20 on a terminal or with
/// `--test-reporter=spec`; the default everywhere from Node 23).
///
/// `✔ name (1.2ms)` passed, `✖ name (1.2ms)` failed, `﹣ name (0.1ms) # reason` skipped; a todo test
/// prints its directive after the duration (`✖ name (…) # reason` is XFAIL, `✔ name (…) # TODO` is
/// XPASS). `▶ parent` opens a group whose indented children get the id `parent > child`; the
/// parent's own result follows them. The `✖ failing tests:` recap at the end is not read again.
enum NodeSpecLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        /// Open `▶` groups: indentation and name.
        var groups: [(indent: Int, name: String)] = []
        for line in LogText.lines(log) {
            let text = line.trimmedSpaces
            guard let symbol = text.first else { continue }
            let indent = line.indentation
            let rest = text.dropFirst().trimmedSpaces
            if symbol == "✖", rest == "failing tests:" { break }
            while let last = groups.last, last.indent >= indent { groups.removeLast() }
            if symbol == "▶" {
                // "▶ name" opens a group; "▶ name (1.2ms)" (newer Node) is the suite's own result.
                if let (name, _) = splitDuration(rest) {
                    record(&parsed, groups, name, passedSymbol: true, directive: nil)
                } else {
                    groups.append((indent, String(rest)))
                }
                continue
            }
            let status: Bool?
            switch symbol {
            case "✔": status = true
            case "✖": status = false
            case "﹣": status = nil
            default: continue
            }
            guard let (name, directive) = splitDuration(rest) else { continue }
            if let passed = status {
                record(&parsed, groups, name, passedSymbol: passed, directive: directive)
            } else {
                parsed.record(path(groups, name), .skipped)
            }
        }
        return parsed
    }

    private static func record(_ parsed: inout ParsedTestLog, _ groups: [(indent: Int, name: String)], _ name: Substring, passedSymbol: Bool, directive: Substring?) {
        let status: TestStatus
        if let directive, !directive.isEmpty {
            if directive.uppercased().hasPrefix("SKIP") {
                status = .skipped
            } else {
                status = passedSymbol ? .xpass : .xfail
            }
        } else {
            status = passedSymbol ? .passed : .failed
        }
        parsed.record(path(groups, name), status)
    }

    private static func path(_ groups: [(indent: Int, name: String)], _ name: Substring) -> String {
        (groups.map(\.name) + [String(name)]).joined(separator: " > ")
    }

    /// The name before the ` (1.23ms)` duration and the directive after `# `, or nil when the
    /// text has no duration.
    private static func splitDuration(_ text: Substring) -> (Substring, Substring?)? {
        var search = text.endIndex
        while let open = text[..<search].range(of: " (", options: .backwards) {
            let after = text[open.upperBound...]
            if let close = after.range(of: "ms)") {
                let number = after[..<close.lowerBound]
                if !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }) {
                    let tail = after[close.upperBound...].trimmedSpaces
                    let directive = tail.hasPrefix("#") ? tail.dropFirst().trimmedSpaces : nil
                    guard tail.isEmpty || directive != nil else { return nil }
                    return (text[..<open.lowerBound], directive)
                }
            }
            search = open.lowerBound
        }
        return nil
    }
}
