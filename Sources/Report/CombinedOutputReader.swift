import Foundation

/// The `command.combined.head` and `.tail` strings of a step line, read straight from the
/// line's bytes. Command output is most of a trajectory and is full of `\n` escapes, which
/// JSONDecoder turns into a String a few bytes at a time (two fifths of a report's time);
/// here each string is unescaped in one pass into a buffer of its size.
///
/// A walk over the JSON structure (strings skipped as a whole, so a key inside a string is
/// never matched); anything it does not expect gives nil and the caller decodes the line
/// with JSONDecoder instead.
enum CombinedOutputReader {
    static func read(_ line: UnsafeRawBufferPointer) -> (head: String, tail: String)? {
        let reader = Reader(bytes: line.assumingMemoryBound(to: UInt8.self))
        guard let command = reader.member("command", ofObjectAt: 0),
              let combined = reader.member("combined", ofObjectAt: command),
              let head = reader.member("head", ofObjectAt: combined), let tail = reader.member("tail", ofObjectAt: combined),
              let headText = reader.string(at: head), let tailText = reader.string(at: tail)
        else { return nil }
        return (headText, tailText)
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>

        func skipSpace(_ at: Int) -> Int {
            var at = at
            while at < bytes.count, isSpace(bytes[at]) { at += 1 }
            return at
        }

        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d }

        /// Where the value of `key` starts, in the object whose `{` is at or after `at`.
        func member(_ key: String, ofObjectAt at: Int) -> Int? {
            var at = skipSpace(at)
            guard at < bytes.count, bytes[at] == UInt8(ascii: "{") else { return nil }
            let wanted = Array(key.utf8)
            at = skipSpace(at + 1)
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { return nil }
            while at < bytes.count {
                guard bytes[at] == UInt8(ascii: "\""), let keyEnd = stringEnd(at) else { return nil }
                let found = keyEnd - at - 2 == wanted.count && wanted.indices.allSatisfy { bytes[at + 1 + $0] == wanted[$0] }
                at = skipSpace(keyEnd)
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { return nil }
                at = skipSpace(at + 1)
                if found { return at }
                guard let valueEnd = valueEnd(at) else { return nil }
                at = skipSpace(valueEnd)
                guard at < bytes.count, bytes[at] == UInt8(ascii: ",") else { return nil }
                at = skipSpace(at + 1)
            }
            return nil
        }

        /// Just past the string whose opening quote is at `at`.
        func stringEnd(_ at: Int) -> Int? {
            var at = at + 1
            while at < bytes.count {
                switch bytes[at] {
                case UInt8(ascii: "\""): return at + 1
                case UInt8(ascii: "\\"): at += 2
                default: at += 1
                }
            }
            return nil
        }

        /// Just past the value starting at `at`.
        func valueEnd(_ at: Int) -> Int? {
            guard at < bytes.count else { return nil }
            switch bytes[at] {
            case UInt8(ascii: "\""): return stringEnd(at)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0, at = at
                while at < bytes.count {
                    switch bytes[at] {
                    case UInt8(ascii: "\""):
                        guard let end = stringEnd(at) else { return nil }
                        at = end
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { return at + 1 }
                    default: break
                    }
                    at += 1
                }
                return nil
            default:
                var at = at
                while at < bytes.count, !isSpace(bytes[at]), bytes[at] != UInt8(ascii: ","), bytes[at] != UInt8(ascii: "}"),
                      bytes[at] != UInt8(ascii: "]") {
                    at += 1
                }
                return at
            }
        }

        /// The string value at `at`, unescaped; nil for anything but a well-formed string.
        func string(at start: Int) -> String? {
            guard start < bytes.count, bytes[start] == UInt8(ascii: "\""), let end = stringEnd(start) else { return nil }
            var out: [UInt8] = []
            out.reserveCapacity(end - start)
            var at = start + 1
            while at < end - 1 {
                let byte = bytes[at]
                guard byte == UInt8(ascii: "\\") else {
                    // A raw control character is not valid JSON: JSONDecoder would refuse it.
                    guard byte >= 0x20 else { return nil }
                    out.append(byte)
                    at += 1
                    continue
                }
                let escaped = bytes[at + 1]
                at += 2
                switch escaped {
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                case UInt8(ascii: "u"):
                    guard let unit = hex(at, end - 1) else { return nil }
                    at += 4
                    var scalar = UInt32(unit)
                    if (0xD800..<0xDC00).contains(unit) {
                        guard at + 1 < end - 1, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u"),
                              let low = hex(at + 2, end - 1), (0xDC00..<0xE000).contains(low) else { return nil }
                        at += 6
                        scalar = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(low - 0xDC00)
                    }
                    guard let character = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: String(Character(character)).utf8)
                default: return nil
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// The four hex digits at `at`, before `limit`.
        func hex(_ at: Int, _ limit: Int) -> UInt16? {
            guard at + 4 <= limit else { return nil }
            var value: UInt16 = 0
            for index in at..<at + 4 {
                guard let digit = Character(Unicode.Scalar(bytes[index])).hexDigitValue else { return nil }
                value = value << 4 | UInt16(digit)
            }
            return value
        }
    }
}
