/// TAP 13/14 (`ok N - description`, `not ok N - description`), as written by `node --test` when
/// stdout is not a terminal, by bash TAP helpers and by `prove -v`.
///
/// - The id is the description (`\#` and `\\` unescaped), or the test number when there is none.
/// - `# SKIP` gives skipped; `# TODO` gives xfail on `not ok` and xpass on `ok`.
/// - Subtests (indented TAP 14 blocks, which come before their parent's result line) get the id
///   `parent > child`; the parent keeps its own id.
/// - YAML diagnostic blocks (`---` ... `...`) are skipped, so result-like lines inside an error
///   message do not count; nothing after `Bail out!` counts.
enum TAPLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        /// Results not yet attached to a parent: indentation, path relative to that level, status.
        var open: [(indent: Int, path: String, status: TestStatus)] = []
        /// The indentation of the YAML block being skipped.
        var yamlIndent: Int?
        var lastResultIndent: Int?

        for line in LogText.lines(log) {
            let text = line.trimmedSpaces
            let indent = line.indentation
            if let yaml = yamlIndent {
                if text == "..." && indent <= yaml { yamlIndent = nil }
                continue
            }
            if text == "---", let resultIndent = lastResultIndent, indent > resultIndent {
                yamlIndent = indent
                continue
            }
            lastResultIndent = nil
            if text.hasPrefix("Bail out!") { break }
            guard let (description, status) = parseResult(text) else { continue }
            lastResultIndent = indent
            var children: [(indent: Int, path: String, status: TestStatus)] = []
            while let last = open.last, last.indent > indent {
                children.append(open.removeLast())
            }
            for child in children.reversed() {
                open.append((indent, description + " > " + child.path, child.status))
            }
            open.append((indent, description, status))
        }
        for result in open {
            parsed.record(result.path, result.status)
        }
        return parsed
    }

    /// `node --test` output: TAP with subtests (Node 20's reporter when stdout is not a terminal),
    /// or, when the log has no TAP result, the spec reporter's.
    static func parseNode(_ log: String) -> ParsedTestLog {
        let tap = parse(log)
        return tap.statuses.isEmpty ? NodeSpecLogParser.parse(log) : tap
    }

    /// The id and status of a result line (`ok 3 - name # SKIP reason`), or nil for other lines.
    static func parseResult(_ text: Substring) -> (String, TestStatus)? {
        let ok: Bool
        var rest: Substring
        if text == "ok" || text.hasPrefix("ok ") {
            ok = true
            rest = text.dropFirst(2)
        } else if text == "not ok" || text.hasPrefix("not ok ") {
            ok = false
            rest = text.dropFirst(6)
        } else {
            return nil
        }
        rest = rest.trimmedSpaces
        let number = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(number.count)
        // "ok 12abc" is not a result line.
        if let first = rest.first, first != " ", first != "\t", first != "-", first != "#" { return nil }
        rest = rest.trimmedSpaces
        if rest.hasPrefix("- ") || rest == "-" { rest = rest.dropFirst().trimmedSpaces }

        var description = ""
        var directive: Substring = ""
        var escaped = false
        var index = rest.startIndex
        while index < rest.endIndex {
            let character = rest[index]
            if escaped {
                description.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "#" {
                directive = rest[rest.index(after: index)...].trimmedSpaces
                break
            } else {
                description.append(character)
            }
            index = rest.index(after: index)
        }
        var id = String(description.trimmedSpaces)
        if id.isEmpty { id = String(number) }
        guard !id.isEmpty else { return nil }

        let word = directive.uppercased()
        let status: TestStatus
        if word.hasPrefix("SKIP") {
            status = .skipped
        } else if word.hasPrefix("TODO") {
            status = ok ? .xpass : .xfail
        } else {
            status = ok ? .passed : .failed
        }
        return (id, status)
    }
}
