import Foundation

/// CWM's edit rule, applied to bytes: the search text must match one or more whole,
/// consecutive lines exactly once (overlapping matches count), and only the bytes it matched
/// are replaced, so bytes that are not UTF-8 elsewhere in the file stay as they were. In a
/// file with CRLF line endings a search written with LF also matches, and the replacement
/// gets CRLF too.
enum SearchReplace {
    struct Applied: Equatable {
        var content: [UInt8]
        /// The 1-based line where the replacement starts.
        var line: Int
    }

    enum Problem: Error, Equatable {
        case notFound(indentationHint: Bool)
        case ambiguous(lines: [Int])
    }

    static func apply(to content: [UInt8], search: String, replace: String) -> Result<Applied, Problem> {
        let newline = UInt8(ascii: "\n")
        let file = [newline] + content
        let lf = Array(search.utf8)
        var candidates = [(search: lf, replace: Array(replace.utf8))]
        if lf.contains(newline), !lf.contains(UInt8(ascii: "\r")), contains(content, Array("\r\n".utf8)) {
            candidates.append((crlf(lf), crlf(Array(replace.utf8))))
        }
        for candidate in candidates {
            let needle = [newline] + candidate.search
            let found = occurrences(of: needle, in: file)
            if found.count > 1 {
                let lines = found.map { index in file[..<index].reduce(1) { $0 + ($1 == newline ? 1 : 0) } }
                return .failure(.ambiguous(lines: lines))
            }
            guard let start = found.first else { continue }
            // Replace "\n" + search with "\n" + replacement, then drop the newline prepended above.
            let updated = Array((Array(file[..<start]) + [newline] + candidate.replace + Array(file[(start + needle.count)...])).dropFirst())
            let line = file[..<start].reduce(0) { $0 + ($1 == newline ? 1 : 0) } + 1
            return .success(Applied(content: updated, line: line))
        }
        let firstLine = search.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? search
        let stripped = Array(firstLine.drop(while: { $0 == " " || $0 == "\t" }).utf8)
        return .failure(.notFound(indentationHint: !stripped.isEmpty && contains(file, stripped)))
    }

    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
        guard !needle.isEmpty, haystack.count >= needle.count else { return [] }
        var found: [Int] = []
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) { found.append(index) }
            index += 1
        }
        return found
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        !occurrences(of: needle, in: haystack).isEmpty
    }

    static func crlf(_ bytes: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count + bytes.count / 16)
        for byte in bytes {
            if byte == UInt8(ascii: "\n") { result.append(UInt8(ascii: "\r")) }
            result.append(byte)
        }
        return result
    }

    /// CWM's feedback after an edit: the lines around the replacement, numbered.
    static func snippet(_ content: [UInt8], line: Int, replace: String) -> (text: String, lines: Int) {
        let text = String(decoding: content, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let first = max(1, line - 8)
        let last = min(lines.count, line + 8 + replace.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) })
        let shown = first <= last ? (first...last).map { String(format: "%6d\t", $0) + lines[$0 - 1] } : []
        return (shown.joined(separator: "\n"), lines.count)
    }
}
