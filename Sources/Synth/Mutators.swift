import Foundation
import Sandbox
import WardenCore

/// One edit that plants a bug: the bytes `start..<end` of `file` become `replacement`.
public struct Mutation: Sendable, Codable, Hashable {
    public var file: String
    /// flip_comparison, flip_boolean, swap_operands, shift_constant, shift_range_bound,
    /// remove_branch, remove_early_return, remove_loop, remove_assignment, invert_if_else,
    /// change_default, swap_statements.
    public var kind: String
    /// The enclosing function (`Class.method`), or `<module>`: equivalent mutants are told apart by it.
    public var function: String
    public var line: Int
    public var start: Int
    public var end: Int
    public var replacement: String

    public init(file: String, kind: String, function: String, line: Int, start: Int, end: Int, replacement: String) {
        self.file = file
        self.kind = kind
        self.function = function
        self.line = line
        self.start = start
        self.end = end
        self.replacement = replacement
    }

    /// `original` with this edit made, or nil when the span is outside it.
    public func applied(to original: Data) -> Data? {
        guard start >= 0, start <= end, end <= original.count else { return nil }
        var data = original
        data.replaceSubrange(start..<end, with: Data(replacement.utf8))
        return data
    }

    /// Every file `mutations` touch, with all of that file's edits made: from the last span to
    /// the first, so the earlier offsets stay true.
    static func mutatedFiles(_ mutations: [Mutation], original: (String) throws -> Data) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for (file, edits) in Dictionary(grouping: mutations, by: \.file) {
            var data = try original(file)
            for edit in edits.sorted(by: { $0.start > $1.start }) {
                guard let mutated = edit.applied(to: data) else {
                    throw WardenError("synth.mutate", "the mutation's span \(edit.start)-\(edit.end) is outside the file", context: file)
                }
                data = mutated
            }
            result[file] = data
        }
        return result
    }

    /// A stable name for the edit, for the task's id and the candidate log.
    public var identity: String { "\(file):\(start)-\(end):\(replacement)" }
}

/// Lists the mutations of one language's source files. Python's runs in the jail with the
/// language's own parser; token-level mutators read the files from the host.
public protocol Mutator: Sendable {
    var language: String { get }
    /// Whether `path` (relative to the checkout) is a source file this mutator edits.
    func handles(_ path: String) -> Bool
    func mutations(of files: [String], checkout: URL, shell: ShellSession) async throws -> [Mutation]
}

/// The mutators `warden synth` knows, by language.
public enum Mutators {
    public static let all: [any Mutator] = [PythonMutator(), TokenMutator.javaScript, TokenMutator.rust]
}

/// Python: `warden_mutate.py` walks each file's `ast` inside the jail and edits node spans.
public struct PythonMutator: Mutator {
    public let language = "python"

    public init() {}

    public func handles(_ path: String) -> Bool { path.hasSuffix(".py") && !path.hasSuffix("setup.py") }

    public static func script() throws -> String {
        guard let url = Bundle.module.url(forResource: "warden_mutate", withExtension: "py", subdirectory: "Resources") else {
            throw WardenError("synth.resource", "warden_mutate.py is missing from the Synth bundle")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    public func mutations(of files: [String], checkout: URL, shell: ShellSession) async throws -> [Mutation] {
        guard !files.isEmpty else { return [] }
        var delimiter = "WARDEN_MUTATE_EOF"
        let script = try Self.script()
        while script.contains(delimiter) { delimiter += "_" }
        let quoted = files.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let command = "cat > /tmp/warden_mutate.py <<'\(delimiter)'\n\(script)\n\(delimiter)\n"
            // Skipped files are reported on stderr, kept out of the JSON lines.
            + "PYTHONDONTWRITEBYTECODE=1 python3 -I /tmp/warden_mutate.py \(quoted) 2>/tmp/warden_mutate.err || { cat /tmp/warden_mutate.err; exit 1; }"
        let run = try await shell.run(command, timeout: 300, spill: true)
        let output = try run.spillPath.map { String(decoding: try Data(contentsOf: URL(fileURLWithPath: $0)), as: UTF8.self) } ?? run.stdout.text
        guard run.exitCode == 0 else {
            throw WardenError("synth.mutate", "the Python mutator failed (exit \(run.exitCode.map(String.init) ?? "none")): \(output.suffix(2000))")
        }
        let decoder = JSONDecoder()
        return output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{") else { return nil }
            return try? decoder.decode(Mutation.self, from: Data(line.utf8))
        }
    }
}

/// Simpler, token-level mutations for C-like languages: comparison and boolean operators,
/// integer constants, boolean literals. Strings and comments are skipped; an operator counts
/// only with spaces on both sides, which keeps generics (`Vec<u8>`) and arrows out.
public struct TokenMutator: Mutator {
    public let language: String
    let extensions: [String]
    /// Lines that start a function, whose name group names the scope.
    let functionPattern: String
    /// A line from which the rest of the file is test code (Rust's `#[cfg(test)]`).
    let testSectionMarker: String?

    public static let javaScript = TokenMutator(
        language: "javascript", extensions: [".js", ".mjs", ".cjs"],
        functionPattern: #"(?:function\s*\*?\s*([A-Za-z_$][\w$]*)|([A-Za-z_$][\w$]*)\s*(?:=\s*(?:async\s*)?(?:function\b|\([^)]*\)\s*=>)|\([^)]*\)\s*\{))"#,
        testSectionMarker: nil)
    public static let rust = TokenMutator(
        language: "rust", extensions: [".rs"], functionPattern: #"fn\s+([A-Za-z_]\w*)"#, testSectionMarker: "#[cfg(test)]")

    public func handles(_ path: String) -> Bool {
        extensions.contains { path.hasSuffix($0) } && !path.hasSuffix("build.rs") && !path.hasPrefix("benches/") && !path.hasPrefix("examples/")
    }

    static let flips: [String: (String, String)] = [
        "<": (">=", "flip_comparison"), ">": ("<=", "flip_comparison"), "<=": (">", "flip_comparison"), ">=": ("<", "flip_comparison"),
        "===": ("!==", "flip_comparison"), "!==": ("===", "flip_comparison"), "==": ("!=", "flip_comparison"), "!=": ("==", "flip_comparison"),
        "&&": ("||", "flip_boolean"), "||": ("&&", "flip_boolean"),
        "+": ("-", "swap_arithmetic"), "-": ("+", "swap_arithmetic"),
    ]

    public func mutations(of files: [String], checkout: URL, shell: ShellSession) async throws -> [Mutation] {
        var result: [Mutation] = []
        for file in files {
            let url = checkout.appendingPathComponent(file)
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw WardenError("synth.mutate", "cannot read the source file: \(error.localizedDescription)", context: url.path)
            }
            result += mutations(in: Array(data), file: file)
        }
        return result
    }

    /// The mutations of one file's bytes.
    func mutations(in bytes: [UInt8], file: String) -> [Mutation] {
        var found: [Mutation] = []
        var line = 1
        var function = "<module>"
        var index = 0
        var lineStart = 0
        let regex = try? Regex(functionPattern)
        func at(_ offset: Int) -> UInt8 { offset < bytes.count ? bytes[offset] : 0 }
        func add(_ kind: String, _ start: Int, _ end: Int, _ replacement: String) {
            found.append(Mutation(file: file, kind: kind, function: function, line: line, start: start, end: end, replacement: replacement))
        }
        /// Reads the line starting at `index`: a new function's name, or the start of test code.
        func startLine() -> Bool {
            let end = bytes[index...].firstIndex(of: 0x0a) ?? bytes.count
            let text = String(decoding: bytes[index..<end], as: UTF8.self)
            if let marker = testSectionMarker, text.trimmingCharacters(in: .whitespaces).hasPrefix(marker) { return false }
            if let regex, let match = text.firstMatch(of: regex) {
                let name = match.output.dropFirst().compactMap { $0.substring }.first.map(String.init)
                if let name, !["if", "for", "while", "switch", "catch", "return", "match"].contains(name) { function = name }
            }
            return true
        }
        guard startLine() else { return [] }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0a {
                line += 1
                index += 1
                lineStart = index
                if !startLine() { break }
                continue
            }
            // Comments and strings are copied over whole.
            if byte == UInt8(ascii: "/"), at(index + 1) == UInt8(ascii: "/") {
                while index < bytes.count, bytes[index] != 0x0a { index += 1 }
                continue
            }
            if byte == UInt8(ascii: "/"), at(index + 1) == UInt8(ascii: "*") {
                index += 2
                while index < bytes.count, !(bytes[index] == UInt8(ascii: "*") && at(index + 1) == UInt8(ascii: "/")) {
                    if bytes[index] == 0x0a { line += 1 }
                    index += 1
                }
                index += 2
                continue
            }
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "`") || (byte == UInt8(ascii: "'") && language == "javascript") {
                index += 1
                while index < bytes.count, bytes[index] != byte {
                    if bytes[index] == UInt8(ascii: "\\") { index += 1 }
                    if index < bytes.count, bytes[index] == 0x0a { line += 1 }
                    index += 1
                }
                index += 1
                continue
            }
            if byte == UInt8(ascii: "'"), language == "rust" {
                // A char literal ('a', '\n'); otherwise a lifetime, which is left alone.
                if at(index + 2) == UInt8(ascii: "'") { index += 3; continue }
                if at(index + 1) == UInt8(ascii: "\\"), let close = bytes[(index + 2)...].prefix(10).firstIndex(of: UInt8(ascii: "'")) {
                    index = close + 1
                    continue
                }
                index += 1
                continue
            }
            let isWordStart = index == 0 || !(isWord(bytes[index - 1]))
            if isWordStart, isDigit(byte) {
                var end = index
                while end < bytes.count, isWord(bytes[end]) || bytes[end] == UInt8(ascii: ".") { end += 1 }
                let text = String(decoding: bytes[index..<end], as: UTF8.self)
                if let value = Int(text) {
                    add("shift_constant", index, end, String(value + 1))
                    if value > 0 { add("shift_constant", index, end, String(value - 1)) }
                }
                index = end
                continue
            }
            if isWordStart, isWord(byte) {
                var end = index
                while end < bytes.count, isWord(bytes[end]) { end += 1 }
                let word = String(decoding: bytes[index..<end], as: UTF8.self)
                if word == "true" { add("flip_literal", index, end, "false") }
                if word == "false" { add("flip_literal", index, end, "true") }
                index = end
                continue
            }
            // Operators: the longest run of operator characters, between spaces.
            var end = index
            while end < bytes.count, "<>=!&|+-".utf8.contains(bytes[end]) { end += 1 }
            if end > index {
                let token = String(decoding: bytes[index..<end], as: UTF8.self)
                let spaced = index > lineStart && bytes[index - 1] == UInt8(ascii: " ") && at(end) == UInt8(ascii: " ")
                if spaced, let (replacement, kind) = Self.flips[token] { add(kind, index, end, replacement) }
                index = end
                continue
            }
            index += 1
        }
        return found
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private func isWord(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$")
    }
}
