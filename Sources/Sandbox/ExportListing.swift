/// Reads bash's `export -p` listing: one `declare -x NAME="VALUE"` (or `declare -x NAME=$'...'`
/// with ANSI-C escapes, when the value holds control characters) per line. One builtin call
/// lists them all, which costs the driver far less than walking the variables itself.
enum ExportListing {
    static func parse(_ listing: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in listing.split(separator: "\n", omittingEmptySubsequences: true) {
            // `declare -x`, or with more attributes (`declare -rx`, `declare -ix`).
            guard line.hasPrefix("declare -"), let space = line.dropFirst(9).firstIndex(of: " "),
                  line[line.index(line.startIndex, offsetBy: 9)..<space].contains("x") else { continue }
            let definition = line[line.index(after: space)...]
            // A name with no `=` is exported but unset: it is not in the environment.
            guard let equals = definition.firstIndex(of: "=") else { continue }
            let name = String(definition[..<equals])
            let quoted = Array(definition[definition.index(after: equals)...].utf8)
            if let value = decode(quoted) { result[name] = value }
        }
        return result
    }

    /// `"..."` (backslash before `"`, `\`, `$` and a backquote) or `$'...'` (ANSI-C escapes).
    static func decode(_ quoted: [UInt8]) -> String? {
        if quoted.count >= 2, quoted.first == UInt8(ascii: "\""), quoted.last == UInt8(ascii: "\"") {
            var bytes: [UInt8] = []
            var index = 1
            while index < quoted.count - 1 {
                let byte = quoted[index]
                if byte == UInt8(ascii: "\\"), index + 1 < quoted.count - 1, "\"\\$`".utf8.contains(quoted[index + 1]) {
                    bytes.append(quoted[index + 1])
                    index += 2
                } else {
                    bytes.append(byte)
                    index += 1
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        if quoted.count >= 3, quoted[0] == UInt8(ascii: "$"), quoted[1] == UInt8(ascii: "'"), quoted.last == UInt8(ascii: "'") {
            return String(decoding: ansiC(quoted[2..<(quoted.count - 1)]), as: UTF8.self)
        }
        return nil
    }

    private static func ansiC(_ body: ArraySlice<UInt8>) -> [UInt8] {
        let text = Array(body)
        var bytes: [UInt8] = []
        var index = 0
        func digits(_ from: Int, _ maximum: Int, radix: Int) -> (Int, Int) {
            var value = 0, count = 0
            while count < maximum, from + count < text.count,
                  let digit = Int(String(UnicodeScalar(text[from + count])), radix: radix) {
                value = value * radix + digit
                count += 1
            }
            return (value, count)
        }
        while index < text.count {
            guard text[index] == UInt8(ascii: "\\"), index + 1 < text.count else {
                bytes.append(text[index])
                index += 1
                continue
            }
            let escape = text[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "n"): bytes.append(0x0a)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "r"): bytes.append(0x0d)
            case UInt8(ascii: "a"): bytes.append(0x07)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0c)
            case UInt8(ascii: "v"): bytes.append(0x0b)
            case UInt8(ascii: "e"), UInt8(ascii: "E"): bytes.append(0x1b)
            case UInt8(ascii: "x"):
                let (value, count) = digits(index, 2, radix: 16)
                if count == 0 { bytes += [UInt8(ascii: "\\"), escape] } else { bytes.append(UInt8(value)); index += count }
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                let (value, count) = digits(index, escape == UInt8(ascii: "u") ? 4 : 8, radix: 16)
                if count > 0, let scalar = Unicode.Scalar(value) { bytes += Array(String(Character(scalar)).utf8); index += count }
                else { bytes += [UInt8(ascii: "\\"), escape] }
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                let (value, count) = digits(index - 1, 3, radix: 8)
                bytes.append(UInt8(truncatingIfNeeded: value))
                index += count - 1
            case UInt8(ascii: "c"):
                if index < text.count { bytes.append(text[index] & 0x1f); index += 1 }
            default:
                // \\, \', \" and \? stand for themselves.
                bytes.append(escape)
            }
        }
        return bytes
    }
}
