import Foundation
import WardenCore

/// The fields of one streamed chat-completion chunk that ``ChatStreamAssembler`` reads, with
/// choices other than index 0 already dropped. Both ``ChunkScanner`` and the `JSONDecoder`
/// fallback produce it, so the tests can hold one against the other.
struct StreamChunk: Equatable {
    var model: String?
    var promptTokens: Int?
    var completionTokens: Int?
    /// vLLM's `prompt_token_ids` (sent in the first chunk when asked with `return_token_ids`).
    var promptTokenIDs: [Int]?
    var choices: [Choice] = []

    struct Choice: Equatable {
        var finishReason: String?
        /// `logprobs.content` with entries lacking a token or a value dropped; nil when absent.
        var logprobs: [TokenLogprob]?
        /// vLLM's `token_ids`: the ids of this chunk's tokens.
        var tokenIDs: [Int]?
        var content: String?
        var reasoningContent: String?
        var reasoning: String?
        var toolCalls: [ToolCallDelta] = []
    }

    struct ToolCallDelta: Equatable {
        var index: Int?
        var id: String?
        var name: String?
        var arguments: String?
    }
}

/// A hand-written reader for the chunk shapes servers actually stream (vLLM, SGLang, llama.cpp,
/// OpenAI): one pass over the bytes, no intermediate tree, strings unescaped once (`\uXXXX`
/// with surrogate pairs), unknown fields skipped but still checked to be JSON.
///
/// It is a fast path only: for anything it does not recognise (typed content parts, arguments
/// as an object, an `error`, a number it would have to round, escaped keys, non-ASCII or
/// `\u` escapes in skipped strings, a repeated known key, malformed JSON) it answers nil and the
/// caller decodes the chunk with `JSONDecoder`, which stays the reference for every shape.
struct ChunkScanner {
    /// Scratch space for unescaping, reused across strings and chunks.
    private var scratch: [UInt8] = []
    /// The last chunk read in full whose only text is one delta string, to read its successors
    /// by that string alone.
    private var envelope: Envelope?
    /// How many chunks were read by their envelope (the tests check the fast path is taken).
    private(set) var envelopeReads = 0

    /// A chunk split around its one delta text (content or reasoning). Servers repeat the same
    /// envelope for every token, so a chunk whose bytes before and after a string literal equal
    /// this one's says the same in everything but that text: a JSON string is one
    /// self-delimiting token, and whatever else the bytes say has been read (and checked) once.
    private struct Envelope {
        var bytes: [UInt8]
        /// The text's string literal, quotes included.
        var text: Range<Int>
        var field: DeltaTextField
        var chunk: StreamChunk
    }

    /// The chunk in `bytes`, or nil when the fallback decoder must decide.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> StreamChunk? {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        if let chunk = scanInEnvelope(base, count: bytes.count) { return chunk }
        // The scratch buffer moves into the reader and back, so it is never shared (a shared
        // one would be copied at its first write).
        var reader = Reader(base: base, count: bytes.count, scratch: [])
        swap(&reader.scratch, &scratch)
        defer { swap(&reader.scratch, &scratch) }
        do throws(Unrecognised) {
            let chunk = try reader.chunk()
            reader.skipWhitespace()
            guard reader.atEnd else { return nil }
            remember(chunk, base: base, count: bytes.count, text: reader.deltaText, texts: reader.deltaTexts)
            return chunk
        } catch {
            return nil
        }
    }

    /// The chunk read as the last envelope with a new text, when `bytes` fit it exactly.
    private mutating func scanInEnvelope(_ base: UnsafePointer<UInt8>, count: Int) -> StreamChunk? {
        guard let envelope else { return nil }
        let prefix = envelope.text.lowerBound, suffix = envelope.bytes.count - envelope.text.upperBound
        guard count >= prefix + suffix + 2 else { return nil }
        let same = envelope.bytes.withUnsafeBufferPointer { known -> Bool in
            guard let knownBase = known.baseAddress else { return false }
            return memcmp(base, knownBase, prefix) == 0
                && memcmp(base + (count - suffix), knownBase + envelope.text.upperBound, suffix) == 0
        }
        guard same else { return nil }
        // The string must end exactly where the known suffix begins.
        var reader = Reader(base: base, count: count - suffix, scratch: [])
        reader.position = prefix
        swap(&reader.scratch, &scratch)
        defer { swap(&reader.scratch, &scratch) }
        guard let text = try? reader.string(), reader.atEnd else { return nil }
        var chunk = envelope.chunk
        chunk.choices[0][keyPath: envelope.field.keyPath] = text
        envelopeReads += 1
        return chunk
    }

    /// Keeps `chunk` as the envelope when its one delta text belongs to its one choice and
    /// nothing else in it varies from token to token (logprobs and token ids do).
    private mutating func remember(_ chunk: StreamChunk, base: UnsafePointer<UInt8>, count: Int,
                                   text: (range: Range<Int>, field: DeltaTextField)?, texts: Int) {
        guard texts == 1, let text, chunk.choices.count == 1, chunk.promptTokenIDs == nil,
              chunk.choices[0][keyPath: text.field.keyPath] != nil,
              chunk.choices[0].logprobs == nil, chunk.choices[0].tokenIDs == nil
        else {
            envelope = nil
            return
        }
        envelope = Envelope(bytes: Array(UnsafeBufferPointer(start: base, count: count)), text: text.range,
                            field: text.field, chunk: chunk)
    }
}

/// The delta fields that carry a token's text.
enum DeltaTextField {
    case content, reasoningContent, reasoning

    var keyPath: WritableKeyPath<StreamChunk.Choice, String?> {
        switch self {
        case .content: \.content
        case .reasoningContent: \.reasoningContent
        case .reasoning: \.reasoning
        }
    }
}

private struct Unrecognised: Error {}

private struct Reader {
    let base: UnsafePointer<UInt8>
    let count: Int
    var scratch: [UInt8]
    var position = 0
    /// The last delta text read (its string literal, quotes included) and how many were read.
    var deltaText: (range: Range<Int>, field: DeltaTextField)?
    var deltaTexts = 0

    init(base: UnsafePointer<UInt8>, count: Int, scratch: [UInt8]) {
        self.base = base
        self.count = count
        self.scratch = scratch
    }

    var atEnd: Bool { position >= count }

    private static let quote: UInt8 = 0x22, backslash: UInt8 = 0x5C, comma: UInt8 = 0x2C, colon: UInt8 = 0x3A
    private static let openBrace: UInt8 = 0x7B, closeBrace: UInt8 = 0x7D, openBracket: UInt8 = 0x5B, closeBracket: UInt8 = 0x5D

    // MARK: - The chunk's shape

    mutating func chunk() throws(Unrecognised) -> StreamChunk {
        var chunk = StreamChunk()
        var seen = KeySet()
        try object { reader, key throws(Unrecognised) in
            switch key {
            case .model:
                try seen.insert(0)
                chunk.model = try reader.optionalString()
            case .choices:
                try seen.insert(1)
                if try reader.null() { return }
                try reader.array { reader throws(Unrecognised) in
                    let (index, choice) = try reader.choice()
                    if (index ?? 0) == 0 { chunk.choices.append(choice) }
                }
            case .usage:
                try seen.insert(2)
                if try reader.null() { return }
                var seenUsage = KeySet()
                try reader.object { reader, key throws(Unrecognised) in
                    switch key {
                    case .promptTokens:
                        try seenUsage.insert(0)
                        chunk.promptTokens = try reader.optionalInt()
                    case .completionTokens:
                        try seenUsage.insert(1)
                        chunk.completionTokens = try reader.optionalInt()
                    default: try reader.skipValue()
                    }
                }
            case .promptTokenIDs:
                try seen.insert(3)
                chunk.promptTokenIDs = try reader.optionalInts()
            case .error:
                // Present and not null: the fallback words the error message.
                guard try reader.null() else { throw Unrecognised() }
            default:
                try reader.skipValue()
            }
        }
        return chunk
    }

    private mutating func choice() throws(Unrecognised) -> (Int?, StreamChunk.Choice) {
        var index: Int?
        var choice = StreamChunk.Choice()
        var seen = KeySet()
        try object { reader, key throws(Unrecognised) in
            switch key {
            case .index:
                try seen.insert(0)
                index = try reader.optionalInt()
            case .finishReason:
                try seen.insert(1)
                choice.finishReason = try reader.optionalString()
            case .logprobs:
                try seen.insert(2)
                if try reader.null() { return }
                var seenContent = KeySet()
                try reader.object { reader, key throws(Unrecognised) in
                    guard key == .content else { return try reader.skipValue() }
                    try seenContent.insert(0)
                    if try reader.null() { return }
                    var tokens: [TokenLogprob] = []
                    try reader.array { reader throws(Unrecognised) in
                        if let token = try reader.tokenLogprob() { tokens.append(token) }
                    }
                    choice.logprobs = tokens
                }
            case .tokenIDs:
                try seen.insert(3)
                choice.tokenIDs = try reader.optionalInts()
            case .delta:
                try seen.insert(4)
                if try reader.null() { return }
                try reader.delta(into: &choice)
            default:
                try reader.skipValue()
            }
        }
        return (index, choice)
    }

    private mutating func delta(into choice: inout StreamChunk.Choice) throws(Unrecognised) {
        var seen = KeySet()
        try object { reader, key throws(Unrecognised) in
            switch key {
            case .content:
                try seen.insert(0)
                choice.content = try reader.optionalDeltaText(.content)
            case .reasoningContent:
                try seen.insert(1)
                choice.reasoningContent = try reader.optionalDeltaText(.reasoningContent)
            case .reasoning:
                try seen.insert(2)
                choice.reasoning = try reader.optionalDeltaText(.reasoning)
            case .toolCalls:
                try seen.insert(3)
                if try reader.null() { return }
                try reader.array { reader throws(Unrecognised) in
                    choice.toolCalls.append(try reader.toolCallDelta())
                }
            default:
                try reader.skipValue()
            }
        }
    }

    private mutating func toolCallDelta() throws(Unrecognised) -> StreamChunk.ToolCallDelta {
        var call = StreamChunk.ToolCallDelta()
        var seen = KeySet()
        try object { reader, key throws(Unrecognised) in
            switch key {
            case .index:
                try seen.insert(0)
                call.index = try reader.optionalInt()
            case .id:
                try seen.insert(1)
                call.id = try reader.optionalString()
            case .function:
                try seen.insert(2)
                if try reader.null() { return }
                var seenFunction = KeySet()
                try reader.object { reader, key throws(Unrecognised) in
                    switch key {
                    case .name:
                        try seenFunction.insert(0)
                        call.name = try reader.optionalString()
                    case .arguments:
                        try seenFunction.insert(1)
                        call.arguments = try reader.optionalString()
                    default: try reader.skipValue()
                    }
                }
            default:
                try reader.skipValue()
            }
        }
        return call
    }

    private mutating func tokenLogprob() throws(Unrecognised) -> TokenLogprob? {
        var token: String?
        var logprob: Double?
        var seen = KeySet()
        try object { reader, key throws(Unrecognised) in
            switch key {
            case .token:
                try seen.insert(0)
                token = try reader.optionalString()
            case .logprob:
                try seen.insert(1)
                logprob = try reader.optionalDouble()
            default: try reader.skipValue()
            }
        }
        guard let token, let logprob else { return nil }
        return TokenLogprob(token: token, logprob: logprob)
    }

    /// Known keys within one object, to refuse a repeated one (decoders disagree on which wins).
    private struct KeySet {
        var bits: UInt8 = 0
        mutating func insert(_ bit: UInt8) throws(Unrecognised) {
            guard bits & (1 << bit) == 0 else { throw Unrecognised() }
            bits |= 1 << bit
        }
    }

    // MARK: - Keys

    enum Key {
        case model, choices, usage, promptTokenIDs, error, promptTokens, completionTokens
        case index, finishReason, logprobs, tokenIDs, delta, content, reasoningContent, reasoning
        case toolCalls, id, function, name, arguments, token, logprob, other
    }

    private static let keys: [(StaticString, Key)] = [
        ("model", .model), ("choices", .choices), ("usage", .usage), ("prompt_token_ids", .promptTokenIDs),
        ("error", .error), ("prompt_tokens", .promptTokens), ("completion_tokens", .completionTokens),
        ("index", .index), ("finish_reason", .finishReason), ("logprobs", .logprobs), ("token_ids", .tokenIDs),
        ("delta", .delta), ("content", .content), ("reasoning_content", .reasoningContent), ("reasoning", .reasoning),
        ("tool_calls", .toolCalls), ("id", .id), ("function", .function), ("name", .name), ("arguments", .arguments),
        ("token", .token), ("logprob", .logprob),
    ]

    /// ``keys`` grouped by length, so a key is compared with at most a few names.
    private static let keysByLength: [[(StaticString, Key)]] = {
        var groups = [[(StaticString, Key)]](repeating: [], count: 1 + (keys.map { $0.0.utf8CodeUnitCount }.max() ?? 0))
        for entry in keys { groups[entry.0.utf8CodeUnitCount].append(entry) }
        return groups
    }()

    /// Reads a key and its colon. Keys with escapes are not matched by bytes: refused.
    private mutating func key() throws(Unrecognised) -> Key {
        try expect(Self.quote)
        let start = position
        while position < count {
            let byte = base[position]
            if byte == Self.quote { break }
            if byte == Self.backslash || byte < 0x20 || byte >= 0x80 { throw Unrecognised() }
            position += 1
        }
        guard position < count else { throw Unrecognised() }
        let length = position - start
        position += 1
        skipWhitespace()
        try expect(Self.colon)
        guard length < Self.keysByLength.count else { return .other }
        for (name, key) in Self.keysByLength[length] where memcmp(name.utf8Start, base + start, length) == 0 {
            return key
        }
        return .other
    }

    // MARK: - Structure

    /// Calls `member` for each key of an object, the reader placed at the key's value.
    private mutating func object(_ member: (inout Reader, Key) throws(Unrecognised) -> Void) throws(Unrecognised) {
        skipWhitespace()
        try expect(Self.openBrace)
        skipWhitespace()
        if peek() == Self.closeBrace {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            let name = try key()
            skipWhitespace()
            try member(&self, name)
            skipWhitespace()
            guard position < count else { throw Unrecognised() }
            let byte = base[position]
            position += 1
            if byte == Self.closeBrace { return }
            guard byte == Self.comma else { throw Unrecognised() }
        }
    }

    /// Calls `element` for each element of an array, the reader placed at the element.
    private mutating func array(_ element: (inout Reader) throws(Unrecognised) -> Void) throws(Unrecognised) {
        skipWhitespace()
        try expect(Self.openBracket)
        skipWhitespace()
        if peek() == Self.closeBracket {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            try element(&self)
            skipWhitespace()
            guard position < count else { throw Unrecognised() }
            let byte = base[position]
            position += 1
            if byte == Self.closeBracket { return }
            guard byte == Self.comma else { throw Unrecognised() }
        }
    }

    /// Skips one value of any kind, checking that it is JSON.
    private mutating func skipValue(depth: Int = 0) throws(Unrecognised) {
        guard depth < 32 else { throw Unrecognised() }
        skipWhitespace()
        switch peek() {
        case Self.quote: try skipString()
        case Self.openBrace:
            try object { reader, _ throws(Unrecognised) in try reader.skipValue(depth: depth + 1) }
        case Self.openBracket:
            try array { reader throws(Unrecognised) in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try number()
        }
    }

    // MARK: - Scalars

    /// Consumes `null` if it comes next.
    private mutating func null() throws(Unrecognised) -> Bool {
        skipWhitespace()
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func optionalString() throws(Unrecognised) -> String? {
        if try null() { return nil }
        return try string()
    }

    /// A delta's text or null, noting where a string literal lay.
    private mutating func optionalDeltaText(_ field: DeltaTextField) throws(Unrecognised) -> String? {
        if try null() { return nil }
        skipWhitespace()
        let start = position
        let text = try string()
        deltaTexts += 1
        deltaText = (start..<position, field)
        return text
    }

    private mutating func optionalInt() throws(Unrecognised) -> Int? {
        if try null() { return nil }
        return try int()
    }

    private mutating func optionalDouble() throws(Unrecognised) -> Double? {
        if try null() { return nil }
        let range = try number()
        // strtod on a NUL-terminated copy: correctly rounded, as the reference decoder is.
        let length = range.count
        let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer -> Double? in
            guard let start = buffer.baseAddress else { return nil }
            memcpy(start, base + range.lowerBound, length)
            start[length] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(start, &end)
            guard end == start + length, value.isFinite else { return nil }
            return value
        }
        guard let value else { throw Unrecognised() }
        return value
    }

    private mutating func optionalInts() throws(Unrecognised) -> [Int]? {
        if try null() { return nil }
        var values: [Int] = []
        try array { reader throws(Unrecognised) in values.append(try reader.int()) }
        return values
    }

    /// An integer written without fraction or exponent, at most 18 digits.
    private mutating func int() throws(Unrecognised) -> Int {
        skipWhitespace()
        let range = try number()
        var index = range.lowerBound
        let negative = base[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard range.upperBound - index <= 18 else { throw Unrecognised() }
        var value = 0
        while index < range.upperBound {
            let digit = base[index] &- UInt8(ascii: "0")
            guard digit <= 9 else { throw Unrecognised() }
            value = value * 10 + Int(digit)
            index += 1
        }
        return negative ? -value : value
    }

    /// The bytes of a number in JSON's grammar.
    private mutating func number() throws(Unrecognised) -> Range<Int> {
        skipWhitespace()
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        if peek() == UInt8(ascii: "0") {
            position += 1
        } else {
            guard digits() > 0 else { throw Unrecognised() }
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw Unrecognised() }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw Unrecognised() }
        }
        return start..<position
    }

    private mutating func digits() -> Int {
        let start = position
        while position < count, base[position] &- UInt8(ascii: "0") <= 9 { position += 1 }
        return position - start
    }

    private mutating func literal(_ word: StaticString) throws(Unrecognised) {
        let length = word.utf8CodeUnitCount
        guard count - position >= length, memcmp(word.utf8Start, base + position, length) == 0 else {
            throw Unrecognised()
        }
        position += length
    }

    /// A string value, unescaped. Invalid UTF-8, raw control characters and lone surrogates are
    /// refused (the fallback decides about them).
    mutating func string() throws(Unrecognised) -> String {
        skipWhitespace()
        try expect(Self.quote)
        let start = position
        var ascii = true
        while position < count {
            let byte = base[position]
            if byte == Self.quote {
                let bytes = UnsafeBufferPointer(start: base + start, count: position - start)
                position += 1
                // ASCII needs no validation; `String(validating:)` is generic and slow here.
                if ascii { return String(decoding: bytes, as: UTF8.self) }
                guard let text = String(validating: bytes, as: UTF8.self) else { throw Unrecognised() }
                return text
            }
            if byte == Self.backslash { break }
            guard byte >= 0x20 else { throw Unrecognised() }
            if byte >= 0x80 { ascii = false }
            position += 1
        }
        // Escapes: copy what came before, then unescape into the scratch buffer.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: base + start, count: position - start))
        while position < count {
            let byte = base[position]
            position += 1
            if byte == Self.quote {
                guard let text = scratch.withUnsafeBufferPointer({ bytes in
                    bytes.allSatisfy { $0 < 0x80 } ? String(decoding: bytes, as: UTF8.self) : String(validating: bytes, as: UTF8.self)
                }) else {
                    throw Unrecognised()
                }
                return text
            }
            guard byte >= 0x20 else { throw Unrecognised() }
            guard byte == Self.backslash else {
                scratch.append(byte)
                continue
            }
            guard position < count else { throw Unrecognised() }
            let escape = base[position]
            position += 1
            switch escape {
            case Self.quote, Self.backslash, UInt8(ascii: "/"): scratch.append(escape)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard count - position >= 6, base[position] == Self.backslash, base[position + 1] == UInt8(ascii: "u") else {
                        throw Unrecognised()
                    }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw Unrecognised() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw Unrecognised()
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw Unrecognised() }
                scratch.append(contentsOf: unicode.utf8)
            default:
                throw Unrecognised()
            }
        }
        throw Unrecognised()
    }

    private mutating func hex4() throws(Unrecognised) -> UInt32 {
        guard count - position >= 4 else { throw Unrecognised() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = base[position]
            position += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Unrecognised()
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// Skips a string that nothing reads: ASCII with simple escapes only, else refused.
    private mutating func skipString() throws(Unrecognised) {
        try expect(Self.quote)
        while position < count {
            let byte = base[position]
            position += 1
            if byte == Self.quote { return }
            guard byte >= 0x20, byte < 0x80 else { throw Unrecognised() }
            if byte == Self.backslash {
                guard position < count else { throw Unrecognised() }
                switch base[position] {
                case Self.quote, Self.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 1
                default:
                    throw Unrecognised()
                }
            }
        }
        throw Unrecognised()
    }

    // MARK: - Bytes

    mutating func skipWhitespace() {
        while position < count {
            switch base[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    private func peek() -> UInt8? {
        position < count ? base[position] : nil
    }

    private mutating func expect(_ byte: UInt8) throws(Unrecognised) {
        guard position < count, base[position] == byte else { throw Unrecognised() }
        position += 1
    }
}
