import Foundation

/// HTML built from hostile input: every string that came from a run (model output, command
/// output, file names, issue text, run names) goes through `text` or `attribute`.
public enum HTML {
    /// Escapes for element content: `&`, `<`, `>` (and quotes, so the same text is also safe
    /// inside an attribute).
    ///
    /// Works on UTF-8 bytes (every byte it replaces is ASCII, so a byte is a whole character):
    /// one pass counts the bytes the replacements add, a second writes the result into a string
    /// of exactly that size; reports escape hundreds of MB, and appending to a growing String
    /// was a large part of their cost.
    public static func text(_ value: some StringProtocol) -> String {
        if let escaped = value.utf8.withContiguousStorageIfAvailable(escape) { return escaped }
        return Array(value.utf8).withUnsafeBufferPointer(escape)
    }

    private static func escape(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        Self.escapedLengths.withUnsafeBufferPointer { lengths in
            var count = 0
            for byte in bytes { count += Int(lengths[Int(byte)]) }
            guard count != bytes.count else { return String(decoding: bytes, as: UTF8.self) }
            return String(unsafeUninitializedCapacity: count) { out in
                var at = 0
                for byte in bytes {
                    if lengths[Int(byte)] == 1 {
                        out[at] = byte
                        at += 1
                    } else {
                        for replacing in (replacement(for: byte) ?? "").utf8 { out[at] = replacing; at += 1 }
                    }
                }
                return at
            }
        }
    }

    /// The byte count each byte has once escaped: 1 for a byte kept as it is.
    private static let escapedLengths: [UInt8] = (0...255).map { UInt8(replacement(for: UInt8($0))?.utf8.count ?? 1) }

    /// What `byte` becomes in HTML text, or nil when it stays as it is.
    private static func replacement(for byte: UInt8) -> String? {
        switch byte {
        case UInt8(ascii: "&"): "&amp;"
        case UInt8(ascii: "<"): "&lt;"
        case UInt8(ascii: ">"): "&gt;"
        case UInt8(ascii: "\""): "&quot;"
        case UInt8(ascii: "'"): "&#39;"
        // NUL and the other C0 controls but tab and newlines are not allowed in HTML text.
        case 0x00...0x08, 0x0B, 0x0C, 0x0E...0x1F, 0x7F: "\u{FFFD}"
        default: nil
        }
    }

    /// The lines of `text`, split on newline bytes (not on Characters, which is many times slower).
    static func lines(_ text: String) -> [Substring] {
        text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { Substring($0) }
    }

    /// Where `text`'s newline bytes are, in order (found with memchr: a byte loop over the
    /// UTF-8 view was a twentieth of a report).
    static func newlineIndices(_ text: String) -> [String.Index] {
        var text = text
        let utf8 = text.utf8
        let offsets = text.withUTF8 { bytes -> [Int] in
            guard let base = bytes.baseAddress else { return [] }
            var offsets: [Int] = []
            var start = 0
            while start < bytes.count, let hit = memchr(base + start, 0x0a, bytes.count - start) {
                let offset = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                offsets.append(offset)
                start = offset + 1
            }
            return offsets
        }
        return offsets.map { utf8.index(utf8.startIndex, offsetBy: $0) }
    }

    /// Escapes a value for a double-quoted attribute.
    public static func attribute(_ value: some StringProtocol) -> String { text(value) }

    /// Bytes read from a run as text: invalid UTF-8 becomes U+FFFD instead of failing the page.
    public static func decode(_ bytes: some Collection<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    /// A random token for the Content-Security-Policy nonce of the page's one style and script.
    static func nonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(generator.next() as UInt64, radix: 36) }.joined()
    }

    /// A whole page: a CSP that allows only this page's nonced style and script (no inline
    /// event handlers, no `javascript:` URLs, no remote loads of any kind), then `body`.
    static func page(title: String, body: String, script: String? = nil) -> String {
        let nonce = nonce()
        let policy = "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'nonce-\(nonce)'; img-src data:; "
            + "base-uri 'none'; form-action 'none'"
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="\(policy)">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(text(title))</title>
            <style nonce="\(nonce)">\(stylesheet)</style>
            </head><body>
            \(body)
            """
        if let script { page += "<script nonce=\"\(nonce)\">\(script)</script>\n" }
        page += "</body></html>\n"
        return page
    }

    static let stylesheet = """
        :root{--ok:#1a7f37;--bad:#cf222e;--muted:#57606a;--line:#d0d7de;--bg2:#f6f8fa}
        body{font:14px/1.45 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0 auto;padding:16px 24px;max-width:1400px;color:#1f2328}
        h1{font-size:22px;margin:4px 0 12px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid var(--line)}
        table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
        th{background:var(--bg2)}th[data-sort]{cursor:pointer}th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
        .num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:var(--muted)}
        .ok{color:var(--ok)}.bad{color:var(--bad)}.runs{display:flex;flex-wrap:wrap;gap:16px}
        .card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:320px}
        .card dl{display:grid;grid-template-columns:auto auto;gap:2px 14px;margin:0}.card dt{color:var(--muted)}.card dd{margin:0}
        pre{background:var(--bg2);padding:6px 8px;margin:4px 0;overflow-x:auto;white-space:pre-wrap;word-break:break-word;font:12px/1.4 "DejaVu Sans Mono",monospace}
        .step{border-left:3px solid var(--line);padding:2px 10px;margin:12px 0}.step h3{font-size:14px;margin:4px 0}
        .meta span{margin-right:12px}.diff .add{color:var(--ok);background:#e6ffec}.diff .del{color:var(--bad);background:#ffebe9}
        .diff .hunk{color:#0550ae}.diff .file{font-weight:bold}.diff span{display:block}
        a.att{display:inline-block;min-width:22px;text-align:center;margin:1px;border-radius:3px;text-decoration:none;padding:0 3px}
        a.att.ok{background:#dafbe1}a.att.bad{background:#ffebe9}a.att.err{background:#fff8c5;color:#7d4e00}
        .pager{margin:8px 0}.pager a,.pager b{margin:0 4px}.filters{display:flex;gap:10px;align-items:center;margin:8px 0}svg text{font-size:10px;fill:#57606a}
        svg .bar{fill:#54aeff}.chart{display:inline-block;margin-right:18px}.chart h4{margin:4px 0;font-size:12px;font-weight:normal}
        .s-submitted{fill:#2da44e}.s-other{fill:#bf8700}.s-error{fill:#cf222e}
        """
}
