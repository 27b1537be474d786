/// `cargo test` (libtest) output: `test path::name ... ok|FAILED|ignored[, reason]`.
///
/// The id is the text between `test ` and ` ... ` (`math::tests::doubles`, an integration test's bare
/// `name`, a doctest's `src/lib.rs - add (line 3)`), without the ` - should panic` marker. When the
/// test's own output splits the line, the status on a later line of its own is used.
enum CargoLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        var parsed = ParsedTestLog()
        var pending: String?
        for line in LogText.lines(log) {
            if line.hasPrefix("test "), let separator = line.range(of: " ... ") {
                var id = line[line.index(line.startIndex, offsetBy: 5)..<separator.lowerBound]
                if id.hasSuffix(" - should panic") { id = id.dropLast(" - should panic".count) }
                let tail = line[separator.upperBound...].trimmedSpaces
                if let status = status(tail) {
                    parsed.record(String(id), status)
                    pending = nil
                } else if tail.hasPrefix("bench:") {
                    parsed.record(String(id), .passed)
                    pending = nil
                } else {
                    pending = String(id)
                }
                continue
            }
            if let id = pending, let status = status(line.trimmedSpaces) {
                parsed.record(id, status)
                pending = nil
            }
        }
        return parsed
    }

    private static func status(_ text: Substring) -> TestStatus? {
        switch text {
        case "ok": .passed
        case "FAILED": .failed
        default: text == "ignored" || text.hasPrefix("ignored, ") ? .skipped : nil
        }
    }
}
