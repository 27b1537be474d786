import Foundation
import WardenCore

/// Builds one `ModelResponse` from the chunks of a streamed chat completion, field by field as
/// ``OpenAIWire/parseResponse(_:)`` reads the non-streamed form: content and reasoning
/// (`reasoning_content` or `reasoning`) concatenated, tool calls keyed by their `index` with the
/// arguments concatenated, logprobs appended, the last `finish_reason`, `model` and `usage`
/// (servers send usage in a last chunk with no choices when asked with `include_usage`).
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
    private var model: String?
    private var promptTokens: Int?
    private var completionTokens: Int?
    private var logprobs: [TokenLogprob]?
    private let decoder = JSONDecoder()

    private struct PartialCall {
        var id = ""
        var name = ""
        var arguments = ""
    }

    mutating func consume(_ event: ServerSentEvent) throws(OpenAIWire.InvalidResponse) {
        if event.data.count <= 16, event.text.trimmingWhitespace() == "[DONE]" {
            done = true
            return
        }
        let chunk: Chunk
        do {
            chunk = try decoder.decode(Chunk.self, from: event.data)
        } catch {
            throw OpenAIWire.InvalidResponse(problem: "a stream event is not a chat-completion chunk (\(OpenAIWire.excerpt(event.data)))")
        }
        if let error = chunk.error, error != .null {
            let message = OpenAIWire.errorMessage(["error": error]) ?? OpenAIWire.excerpt(event.data)
            throw OpenAIWire.InvalidResponse(problem: "the server returned an error in the stream: \(message)")
        }
        if let name = chunk.model, !name.isEmpty { model = name }
        if let usage = chunk.usage {
            if let n = usage.prompt_tokens { promptTokens = n }
            if let n = usage.completion_tokens { completionTokens = n }
        }
        for choice in chunk.choices ?? [] where (choice.index ?? 0) == 0 {
            sawChoice = true
            if let reason = choice.finish_reason { finishReason = reason }
            if let tokens = choice.logprobs?.content {
                logprobs = (logprobs ?? []) + tokens.compactMap { token in
                    guard let text = token.token, let value = token.logprob else { return nil }
                    return TokenLogprob(token: text, logprob: value)
                }
            }
            guard let delta = choice.delta else { continue }
            if let text = delta.content?.text { content += text }
            if let text = delta.reasoning_content ?? delta.reasoning { reasoning = (reasoning ?? "") + text }
            for (position, part) in (delta.tool_calls ?? []).enumerated() {
                // Without an `index` (not OpenAI's format, but seen), an id starts a new call
                // and a delta without one continues the last.
                let key = part.index ?? (part.id == nil ? calls.keys.max() ?? position : calls.count)
                var call = calls[key] ?? PartialCall()
                if call.id.isEmpty, let id = part.id { call.id = id }
                // Most servers send the name once; a server that repeats it whole is not doubled.
                if let name = part.function?.name, name != call.name { call.name += name }
                if let arguments = part.function?.arguments { call.arguments += arguments.text }
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
            promptTokens: promptTokens, completionTokens: completionTokens, logprobs: logprobs
        )
    }

    // MARK: - The chunk's wire shape

    private struct Chunk: Decodable {
        var model: String?
        var choices: [Choice]?
        var usage: Usage?
        var error: JSONValue?
    }

    private struct Choice: Decodable {
        var index: Int?
        var delta: Delta?
        var finish_reason: String?
        var logprobs: Logprobs?
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
