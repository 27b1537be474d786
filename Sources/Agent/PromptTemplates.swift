import Foundation
import Synchronization
import WardenCore

/// The prompt templates shipped in `Sources/Agent/Templates`, and `{{name}}` substitution.
///
/// A placeholder is `{{name}}`, spaces allowed inside the braces (`{{ name }}`), where the name
/// is letters, digits and underscores, not starting with a digit. Any other text, `{{` and `}}`
/// included, is literal. Rendering is one pass over the template: a value is inserted as it
/// is and never scanned for placeholders, so an issue text that contains `{{repo_path}}`
/// reaches the model unchanged. A placeholder whose name is not a known value is a typo in the
/// template: `check` reports it, naming the template, the line and the name, when the template
/// is loaded and before any model call.
public enum Templates {
    public static func builtIn(_ name: String) -> String {
        builtInTexts.withLock { texts in
            if let text = texts[name] { return text }
            guard let url = Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "Templates"),
                  let text = try? String(contentsOf: url, encoding: .utf8) else {
                return "(missing built-in template \(name))"
            }
            texts[name] = text
            return text
        }
    }

    /// The built-in templates read so far: a batch run renders thousands of episodes' prompts
    /// from the same few files.
    private static let builtInTexts = Mutex<[String: String]>([:])

    /// Reads a user's template file, or the built-in one.
    public static func load(_ path: String?, builtIn name: String) throws -> String {
        guard let path else { return builtIn(name) }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw WardenError("config.template", "cannot read the template: \(error.localizedDescription)", context: path)
        }
    }

    /// Reads a template (the user's file, else the built-in one) and checks that every
    /// placeholder in it names one of `keys`.
    public static func load(_ path: String?, builtIn name: String, keys: Set<String>) throws -> String {
        let text = try load(path, builtIn: name)
        try check(text, name: path ?? "built-in template \(name)", keys: keys)
        return text
    }

    /// Throws for the first placeholder that names none of `keys`: `name` (the file, or the
    /// built-in template's name), its line, and the names the template may use.
    public static func check(_ template: String, name: String, keys: Set<String>) throws {
        guard let unknown = placeholders(in: template).first(where: { !keys.contains($0.name) }) else { return }
        let known = keys.sorted().map { "{{\($0)}}" }.joined(separator: ", ")
        throw WardenError("config.template", "unknown placeholder {{\(unknown.name)}} on line \(unknown.line); this template may use \(known)",
                          context: name)
    }

    /// The template with each placeholder replaced by its value, in one pass. A placeholder
    /// without a value stays as written (`check` is what rejects one when a template is loaded).
    public static func render(_ template: String, _ values: [String: String]) -> String {
        var text = ""
        text.reserveCapacity(template.utf8.count + values.values.reduce(0) { $0 + $1.utf8.count })
        var literalStart = template.startIndex
        for placeholder in placeholders(in: template) {
            guard let value = values[placeholder.name] else { continue }
            text += template[literalStart..<placeholder.range.lowerBound]
            text += value
            literalStart = placeholder.range.upperBound
        }
        text += template[literalStart...]
        return text
    }

    /// A placeholder in a template: its name, where it is, and its line (from 1).
    struct Placeholder: Hashable {
        var name: String
        var range: Range<String.Index>
        var line: Int
    }

    /// The placeholders of `template`, in order, found by hand over the UTF-8 bytes.
    static func placeholders(in template: String) -> [Placeholder] {
        let bytes = template.utf8
        var found: [Placeholder] = []
        var line = 1
        var index = bytes.startIndex
        func byte(at position: String.Index) -> UInt8? { position < bytes.endIndex ? bytes[position] : nil }
        func isNameStart(_ byte: UInt8) -> Bool { (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte) || byte == 0x5f }
        func isName(_ byte: UInt8) -> Bool { isNameStart(byte) || (0x30...0x39).contains(byte) }
        func skipSpaces(_ position: inout String.Index) {
            while byte(at: position) == 0x20 { position = bytes.index(after: position) }
        }
        while index < bytes.endIndex {
            let current = bytes[index]
            if current == 0x0a { line += 1 }
            let next = bytes.index(after: index)
            guard current == 0x7b, byte(at: next) == 0x7b else { index = next; continue }
            var cursor = bytes.index(after: next)
            skipSpaces(&cursor)
            let nameStart = cursor
            guard let first = byte(at: cursor), isNameStart(first) else { index = next; continue }
            while let character = byte(at: cursor), isName(character) { cursor = bytes.index(after: cursor) }
            let nameEnd = cursor
            skipSpaces(&cursor)
            guard byte(at: cursor) == 0x7d, byte(at: bytes.index(after: cursor)) == 0x7d else { index = next; continue }
            let end = bytes.index(cursor, offsetBy: 2)
            found.append(Placeholder(name: String(template[nameStart..<nameEnd]), range: index..<end, line: line))
            index = end
        }
        return found
    }
}
