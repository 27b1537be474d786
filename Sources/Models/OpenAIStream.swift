import Foundation
import WardenCore

/// A streamed chat completion's body, fed as it arrives: events split by
/// ``ServerSentEventParser`` and assembled by ``ChatStreamAssembler``. One value, so a caller
/// that keeps it in a class pays one exclusive access per body part rather than one per event.
struct ChatEventStream {
    private var parser = ServerSentEventParser()
    private var assembler = ChatStreamAssembler()

    /// Whether `[DONE]` arrived; later bytes are not read.
    var done: Bool { assembler.done }

    /// Consumes `bytes`: whether they completed an event (progress, for the stall timeout), and
    /// the chunk that could not be read, if one could not.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> (completedEvent: Bool, unreadable: OpenAIWire.InvalidResponse?) {
        var completedEvent = false
        do throws(OpenAIWire.InvalidResponse) {
            try parser.feed(bytes) { _, data throws(OpenAIWire.InvalidResponse) in
                completedEvent = true
                guard !assembler.done else { return }
                try assembler.consume(data: data)
            }
        } catch {
            return (completedEvent, error)
        }
        return (completedEvent, nil)
    }

    /// The assembled reply, or why the stream does not hold a complete one.
    func response() throws(OpenAIWire.InvalidResponse) -> ModelResponse {
        try assembler.response()
    }
}

/// Builds one `ModelResponse` from the chunks of a streamed chat completion, field by field as
/// ``OpenAIWire/parseResponse(_:)`` reads the non-streamed form: content and reasoning
/// (`reasoning_content` or `reasoning`) concatenated, tool calls keyed by their `index` with the
/// arguments concatenated, logprobs and vLLM's `token_ids` appended, vLLM's `prompt_token_ids`
/// (first chunk), the last `finish_reason`, `model` and `usage` (servers send usage in a last
/// chunk with no choices when asked with `include_usage`), and the `model` of the first and the
/// last chunk as the policy versions at the call's start and end.
///
/// Chunks are read by ``ChunkScanner``; any shape it does not recognise goes to `JSONDecoder`.
///
/// The stream is complete at `[DONE]`, or at its end once a `finish_reason` arrived (some
/// servers omit `[DONE]`); a stream that ends before either is an invalid response, retried.
struct ChatStreamAssembler {
    /// Whether `[DONE]` arrived; later bytes are not read.
    private(set) var done = false

    private var sawChoice = false
    private var content = ""
    private var reasoning: String?
    private var calls: [Int: PartialCall] = [:]
    private var finishReason: String?
    private var firstModel: String?
    private var model: String?
    private var promptTokens: Int?
    private var completionTokens: Int?
    private var logprobs: [TokenLogprob]?
    private var promptTokenIDs: [Int]?
    private var completionTokenIDs: [Int]?
    private var scanner = ChunkScanner()

    private struct PartialCall {
        var id = ""
        var name = ""
        var arguments = ""
    }

    mutating func consume(_ event: ServerSentEvent) throws(OpenAIWire.InvalidResponse) {
        try event.data.withUnsafeBytes { bytes in
            Result { () throws(OpenAIWire.InvalidResponse) in try consume(data: bytes) }
        }.get()
    }

    /// Consumes one event's data; `data` is only read during the call.
    mutating func consume(data: UnsafeRawBufferPointer) throws(OpenAIWire.InvalidResponse) {
        if data.count <= 16, String(decoding: data, as: UTF8.self).trimmingWhitespace() == "[DONE]" {
            done = true
            return
        }
        if let chunk = scanner.scan(data) {
            apply(chunk)
        } else {
            apply(try Self.decode(Data(data)))
        }
    }

    /// The reference reading of a chunk, for every shape the scanner does not recognise.
    static func decode(_ data: Data) throws(OpenAIWire.InvalidResponse) -> StreamChunk {
        let chunk: Chunk
        do {
            chunk = try JSONDecoder().decode(Chunk.self, from: data)
        } catch {
            throw OpenAIWire.InvalidResponse(problem: "a stream event is not a chat-completion chunk (\(OpenAIWire.excerpt(data)))")
        }
        if let error = chunk.error, error != .null {
            let message = OpenAIWire.errorMessage(["error": error]) ?? OpenAIWire.excerpt(data)
            throw OpenAIWire.InvalidResponse(problem: "the server returned an error in the stream: \(message)")
        }
        return chunk.fields
    }

    private mutating func apply(_ chunk: StreamChunk) {
        if let name = chunk.model, !name.isEmpty {
            if firstModel == nil { firstModel = name }
            model = name
        }
        if let n = chunk.promptTokens { promptTokens = n }
        if let n = chunk.completionTokens { completionTokens = n }
        if let ids = chunk.promptTokenIDs { promptTokenIDs = ids }
        for choice in chunk.choices {
            sawChoice = true
            if let reason = choice.finishReason { finishReason = reason }
            if let tokens = choice.logprobs { logprobs = (logprobs ?? []) + tokens }
            if let ids = choice.tokenIDs { completionTokenIDs = (completionTokenIDs ?? []) + ids }
            if let text = choice.content { content += text }
            if let text = choice.reasoningContent ?? choice.reasoning { reasoning = (reasoning ?? "") + text }
            for (position, part) in choice.toolCalls.enumerated() {
                // Without an `index` (not OpenAI's format, but seen), an id starts a new call
                // and a delta without one continues the last.
                let key = part.index ?? (part.id == nil ? calls.keys.max() ?? position : calls.count)
                var call = calls[key] ?? PartialCall()
                if call.id.isEmpty, let id = part.id { call.id = id }
                // Most servers send the name once; a server that repeats it whole is not doubled.
                if let name = part.name, name != call.name { call.name += name }
                if let arguments = part.arguments { call.arguments += arguments }
                calls[key] = call
            }
        }
    }

    /// The assembled reply, or why the stream does not hold a complete one.
    func response() throws(OpenAIWire.InvalidResponse) -> ModelResponse {
        guard sawChoice else {
            throw OpenAIWire.InvalidResponse(problem: "the stream ended without a choice")
        }
        guard done || finishReason != nil else {
            throw OpenAIWire.InvalidResponse(problem: "the stream ended before the reply was complete (no finish_reason, no [DONE])")
        }
        var toolCalls: [ToolCall] = []
        for (position, key) in calls.keys.sorted().enumerated() {
            guard let call = calls[key], !call.name.isEmpty else {
                throw OpenAIWire.InvalidResponse(problem: "choices[0].message.tool_calls[\(position)] has no function name")
            }
            toolCalls.append(ToolCall(id: call.id.isEmpty ? "call_\(position)" : call.id, name: call.name, arguments: call.arguments))
        }
        return ModelResponse(
            content: content, reasoning: reasoning, toolCalls: toolCalls, finishReason: finishReason, model: model,
            promptTokens: promptTokens, completionTokens: completionTokens, logprobs: logprobs,
            promptTokenIDs: promptTokenIDs, completionTokenIDs: completionTokenIDs,
            policyVersionAtStart: firstModel, policyVersionAtEnd: model
        )
    }

    // MARK: - The chunk's wire shape

    private struct Chunk: Decodable {
        var model: String?
        var choices: [Choice]?
        var usage: Usage?
        var error: JSONValue?
        var prompt_token_ids: [Int]?

        var fields: StreamChunk {
            StreamChunk(
                model: model, promptTokens: usage?.prompt_tokens, completionTokens: usage?.completion_tokens,
                promptTokenIDs: prompt_token_ids,
                choices: (choices ?? []).filter { ($0.index ?? 0) == 0 }.map { choice in
                    StreamChunk.Choice(
                        finishReason: choice.finish_reason,
                        logprobs: choice.logprobs?.content?.compactMap { token in
                            guard let text = token.token, let value = token.logprob else { return nil }
                            return TokenLogprob(token: text, logprob: value)
                        },
                        tokenIDs: choice.token_ids,
                        content: choice.delta?.content?.text,
                        reasoningContent: choice.delta?.reasoning_content,
                        reasoning: choice.delta?.reasoning,
                        toolCalls: (choice.delta?.tool_calls ?? []).map { part in
                            StreamChunk.ToolCallDelta(
                                index: part.index, id: part.id, name: part.function?.name, arguments: part.function?.arguments?.text
                            )
                        }
                    )
                }
            )
        }
    }

    private struct Choice: Decodable {
        var index: Int?
        var delta: Delta?
        var finish_reason: String?
        var logprobs: Logprobs?
        var token_ids: [Int]?
    }

    private struct Delta: Decodable {
        var content: Text?
        var reasoning_content: String?
        var reasoning: String?
        var tool_calls: [CallDelta]?
    }

    private struct CallDelta: Decodable {
        var index: Int?
        var id: String?
        var function: FunctionDelta?
    }

    private struct FunctionDelta: Decodable {
        var name: String?
        var arguments: Text?
    }

    private struct Usage: Decodable {
        var prompt_tokens: Int?
        var completion_tokens: Int?
    }

    private struct Logprobs: Decodable {
        var content: [Token]?
    }

    private struct Token: Decodable {
        var token: String?
        var logprob: Double?
    }

    /// A string, typed content parts (their text joined) or, for arguments, a JSON object
    /// (kept as the JSON text it means), as the non-streamed parser accepts them.
    private struct Text: Decodable {
        var text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let string = try? container.decode(String.self) {
                text = string
            } else if let parts = try? container.decode([Part].self) {
                text = parts.compactMap(\.text).joined()
            } else {
                let value = try container.decode(JSONValue.self)
                text = (try? OpenAIWire.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            }
        }

        private struct Part: Decodable {
            var text: String?
        }
    }
}
