import Foundation
import Testing
import WardenCore
@testable import Models

/// The hand-written chunk scanner is a fast path: whatever it returns must be exactly what the
/// `JSONDecoder` reference reads, and whatever it does not recognise must go to the reference.
@Suite("Chunk scanner against the JSONDecoder reference")
struct ChunkScannerTests {
    private func scan(_ text: String) -> StreamChunk? {
        var scanner = ChunkScanner()
        return Array(text.utf8).withUnsafeBytes { scanner.scan($0) }
    }

    private func reference(_ text: String) -> StreamChunk? {
        try? ChatStreamAssembler.decode(Data(text.utf8))
    }

    /// The scanner reads `text` itself, and reads it as the reference does.
    private func expectScanned(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let fast = scan(text)
        #expect(fast != nil, "the scanner should read \(text)", sourceLocation: sourceLocation)
        #expect(fast == reference(text), "\(text)", sourceLocation: sourceLocation)
    }

    @Test func shapesServersStream() throws {
        expectScanned(chunk(delta: #"{"role": "assistant", "content": ""}"#))
        expectScanned(chunk(delta: #"{"content": "Hel"}"#, extraChoice: #", "token_ids": [9906, 13]"#))
        expectScanned(chunk(finish: "stop"))
        expectScanned(usageChunk())
        expectScanned(#"{"id":"x","model":"m","prompt_token_ids":[1,2,3],"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#)
        expectScanned(chunk(delta: #"{"reasoning_content": "think"}"#))
        expectScanned(chunk(delta: #"{"reasoning": "think", "content": null}"#))
        expectScanned(chunk(delta: #"{"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "bash", "arguments": ""}}]}"#))
        expectScanned(chunk(delta: #"{"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\": \"ls -la\\n\"}"}}]}"#))
        expectScanned(chunk(delta: #"{"content": "Hel"}"#, extraChoice: #", "logprobs": {"content": [{"token": "Hel", "logprob": -0.25, "bytes": [72, 101, 108], "top_logprobs": []}]}"#)
            .replacingOccurrences(of: #""logprobs": null, "#, with: ""))
        // Escapes, non-ASCII, surrogate pairs, whitespace everywhere, unknown nested fields.
        expectScanned(chunk(delta: #"{"content": "a\"b\\c\/d\n\t\r\b\f \u00e9\u4e2d\ud83d\ude00 é中😀"}"#))
        expectScanned(" {\n \"model\" : \"m\" ,\"choices\":[ {\"index\":0,\"delta\":{\"content\":\"x\"},\"extra\":{\"a\":[1,-2.5e3,true,false,null,{\"b\":\"c\\\"\"}]}} ] , \"system_fingerprint\":null}\n")
        // Other choices than 0 are dropped by both.
        expectScanned(#"{"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"mine"}}]}"#)
        #expect(scan(#"{"choices":[{"index":1,"delta":{"content":"other"}}]}"#)?.choices.isEmpty == true)
        #expect(scan(chunk(delta: #"{"content": "\ud83d\ude00"}"#))?.choices.first?.content == "😀")
    }

    @Test func unrecognisedShapesGoToTheReference() throws {
        let fallbacks = [
            // Typed content parts, arguments as an object, an error.
            chunk(delta: #"{"content": [{"type": "text", "text": "Hi"}]}"#),
            chunk(delta: #"{"tool_calls": [{"index": 0, "function": {"name": "bash", "arguments": {"command": "ls"}}}]}"#),
            #"{"error": {"message": "overloaded"}}"#,
            // A repeated key (decoders disagree on which wins), a fractional index, a key with an escape.
            #"{"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]}"#,
            #"{"choices":[{"index":0.0,"delta":{"content":"a"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"cont\u0065nt":"a"}}]}"#,
            // A lone surrogate, a raw control character, trailing bytes, truncation.
            chunk(delta: #"{"content": "\ud83d"}"#),
            "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\u{01}\"}}]}",
            chunk(delta: #"{"content": "a"}"#) + " x",
            String(chunk(delta: #"{"content": "a"}"#).dropLast(3)),
        ]
        for text in fallbacks {
            #expect(scan(text) == nil, "the scanner should leave \(text) to the reference")
        }
        // The assembler still reads the valid ones through the reference.
        var assembler = ChatStreamAssembler()
        try assembler.consume(ServerSentEvent(name: "message", data: Data(fallbacks[0].utf8)))
        try assembler.consume(ServerSentEvent(name: "message", data: Data(chunk(finish: "stop").utf8)))
        #expect(try assembler.response().content == "Hi")
        var failing = ChatStreamAssembler()
        #expect(throws: OpenAIWire.InvalidResponse.self) {
            try failing.consume(ServerSentEvent(name: "message", data: Data(fallbacks[2].utf8)))
        }
    }

    /// Random chunks in random spellings, then random damage: whenever the scanner answers, its
    /// answer is the reference's, and it answers for every undamaged chunk it generated.
    @Test func randomChunksAndDamageAgreeWithTheReference() {
        var random = SeededRandom(seed: 20261203)
        var scanned = 0, damagedAnswered = 0
        for _ in 0..<3000 {
            let text = randomChunk(&random)
            let fast = scan(text)
            #expect(fast != nil, "an undamaged chunk the scanner should read: \(text)")
            #expect(fast == reference(text), "\(text)")
            if fast != nil { scanned += 1 }

            var bytes = Array(text.utf8)
            switch random.next(3) {
            case 0: bytes.removeLast(random.next(bytes.count) + 1)
            case 1: bytes.remove(at: random.next(bytes.count))
            default: bytes[random.next(bytes.count)] = Array(#"{}[]",:0-"\n\u{80}"#.utf8)[random.next(13)]
            }
            var scanner = ChunkScanner()
            let damaged = bytes.withUnsafeBytes { scanner.scan($0) }
            if let damaged {
                damagedAnswered += 1
                #expect(damaged == (try? ChatStreamAssembler.decode(Data(bytes))),
                        "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        #expect(scanned == 3000)
        // Some damage leaves valid JSON (a digit changed, say): those must have been compared.
        #expect(damagedAnswered > 0)
    }

    /// One scanner reads a stream: chunks that repeat an envelope around a new text are read by
    /// that text alone, and whatever stands where the text stood (several tokens, a broken or
    /// unterminated string, another value) reads as the reference reads it, or goes to it.
    @Test func repeatedEnvelopesAgreeWithTheReference() {
        var random = SeededRandom(seed: 20261206)
        var scanner = ChunkScanner()
        let hostile = [#""a","content":"b""#, #""a" "#, #" "a""#, #""abc\""#, #""x"}"#, "null", "42", #""\u00e9\ud83d\ude00""#,
                       #""\ud83d""#, "\"a\u{01}\"", #""""#, #""a"],"x":["#, #""é中""#, #""a"}]}"#, #""a\"#]
        var compared = 0
        for _ in 0..<400 {
            let field = [#""content""#, #""reasoning_content""#, #""reasoning""#][random.next(3)]
            let envelope = chunk(delta: "{\(field): @@}", extraChoice: random.next(2) == 0 ? "" : #", "stop_reason": null"#)
            for step in 0..<(1 + random.next(8)) {
                let isHostile = step > 0 && random.next(3) == 0
                let text = envelope.replacingOccurrences(of: "@@", with: isHostile ? hostile[random.next(hostile.count)] : randomString(&random))
                let fast = Array(text.utf8).withUnsafeBytes { scanner.scan($0) }
                if !isHostile { #expect(fast != nil, "the scanner should read \(text)") }
                if let fast {
                    compared += 1
                    #expect(fast == reference(text), "\(text)")
                }
            }
        }
        #expect(compared > 1000)
        #expect(scanner.envelopeReads > 500, "the envelope path was taken \(scanner.envelopeReads) times")
    }

    // MARK: - Generating chunks

    private func randomChunk(_ random: inout SeededRandom) -> String {
        var members: [String] = []
        if random.next(4) > 0 { members.append(#""model": \#(randomString(&random))"#) }
        if random.next(3) == 0 { members.append(#""id": "chatcmpl-\#(random.next(1000))", "object": "chat.completion.chunk""#) }
        if random.next(6) == 0 { members.append(#""prompt_token_ids": [\#(randomInts(&random))]"#) }
        if random.next(5) == 0 {
            members.append(#""usage": {"prompt_tokens": \#(random.next(5000)), "completion_tokens": \#(random.next(900)), "total_tokens": 1}"#)
        }
        else if random.next(8) == 0 { members.append(#""usage": null"#) }
        if random.next(8) == 0 { members.append(#""error": null"#) }
        let choices = (0..<random.next(3)).map { _ in randomChoice(&random) }
        members.append(random.next(10) == 0 ? #""choices": null"# : #""choices": [\#(choices.joined(separator: ","))]"#)
        return spaced("{" + shuffled(members, &random).joined(separator: spaced(",", &random)) + "}", &random)
    }

    private func randomChoice(_ random: inout SeededRandom) -> String {
        var members: [String] = []
        if random.next(5) > 0 { members.append(#""index": \#(random.next(5) == 0 ? 1 : 0)"#) }
        members.append(#""finish_reason": \#(["null", #""stop""#, #""tool_calls""#, #""length""#][random.next(4)])"#)
        switch random.next(4) {
        case 0: members.append(#""logprobs": null"#)
        case 1:
            let tokens = (0..<random.next(3)).map { _ in
                #"{"token": \#(randomString(&random)), "logprob": -\#(random.next(100)).\#(random.next(1000))e-\#(random.next(3)), "bytes": [1, 2]}"#
            }
            members.append(#""logprobs": {"content": [\#(tokens.joined(separator: ","))]}"#)
        default: break
        }
        if random.next(4) == 0 { members.append(#""token_ids": [\#(randomInts(&random))]"#) }
        var delta: [String] = []
        if random.next(3) == 0 { delta.append(#""role": "assistant""#) }
        if random.next(2) == 0 { delta.append(#""content": \#(random.next(6) == 0 ? "null" : randomString(&random))"#) }
        if random.next(4) == 0 { delta.append(#""reasoning_content": \#(randomString(&random))"#) }
        if random.next(6) == 0 { delta.append(#""reasoning": \#(randomString(&random))"#) }
        if random.next(4) == 0 {
            let calls = (0..<(1 + random.next(2))).map { position in
                var call: [String] = []
                if random.next(4) > 0 { call.append(#""index": \#(position)"#) }
                if random.next(2) == 0 { call.append(#""id": "call_\#(random.next(99))", "type": "function""#) }
                var function: [String] = []
                if random.next(2) == 0 { function.append(#""name": \#(randomString(&random))"#) }
                if random.next(3) > 0 { function.append(#""arguments": \#(randomString(&random))"#) }
                call.append(#""function": {\#(function.joined(separator: ","))}"#)
                return "{" + call.joined(separator: ",") + "}"
            }
            delta.append(#""tool_calls": [\#(calls.joined(separator: ","))]"#)
        }
        members.append(random.next(10) == 0 ? #""delta": null"# : #""delta": {\#(shuffled(delta, &random).joined(separator: ","))}"#)
        return "{" + shuffled(members, &random).joined(separator: spaced(",", &random)) + "}"
    }

    private func randomInts(_ random: inout SeededRandom) -> String {
        (0..<random.next(6)).map { _ in String(random.next(150_000)) }.joined(separator: ", ")
    }

    /// A JSON string of random characters, each spelled raw, with a short escape or as `\u`.
    private func randomString(_ random: inout SeededRandom) -> String {
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{08}", "\u{0C}", "\u{01}",
                                          "é", "中", "😀", "\u{7F}", "{", "}"]
        var text = "\""
        for _ in 0..<random.next(12) {
            let scalar = alphabet[random.next(alphabet.count)]
            let short: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "/": "\\/", "\n": "\\n", "\t": "\\t", "\r": "\\r",
                                                    "\u{08}": "\\b", "\u{0C}": "\\f"]
            let mustEscape = scalar.value < 0x20 || scalar == "\"" || scalar == "\\"
            switch random.next(3) {
            case 0 where !mustEscape: text.unicodeScalars.append(scalar)
            case 1 where short[scalar] != nil: text += short[scalar]!
            default:
                for unit in String(scalar).utf16 { text += "\\u" + String(format: random.next(2) == 0 ? "%04x" : "%04X", unit) }
            }
        }
        return text + "\""
    }

    private func spaced(_ text: String, _ random: inout SeededRandom) -> String {
        let spaces = ["", " ", "\n", "\t ", "  \r\n"]
        return spaces[random.next(spaces.count)] + text + spaces[random.next(spaces.count)]
    }

    private func shuffled(_ items: [String], _ random: inout SeededRandom) -> [String] {
        var items = items
        for index in items.indices.reversed() where index > 0 { items.swapAt(index, random.next(index + 1)) }
        return items
    }
}

/// A small deterministic generator (SplitMix64), so a failure reproduces.
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    /// A number in `0..<bound`.
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(max(bound, 1)))
    }
}
