import Foundation
import WardenCore

/// The chat-completions wire format: request bodies out, responses and error bodies in.
/// Pure functions over `JSONValue`, apart from the HTTP code so they can be tested alone.
enum OpenAIWire {
    /// The JSON body for one turn. `extraBody` is merged last so it can override anything.
    static func requestBody(_ request: ModelRequest, configuration c: OpenAIClient.Configuration) -> [String: JSONValue] {
        var body: [String: JSONValue] = [
            "model": .string(c.model),
            "messages": .array(request.messages.map(message)),
        ]
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { tool in
                .object([
                    "type": .string("function"),
                    "function": .object([
                        "name": .string(tool.name),
                        "description": .string(tool.description),
                        "parameters": tool.parameters,
                    ]),
                ])
            })
        }
        if let maxTokens = request.maxTokens ?? c.maxTokens { body["max_tokens"] = .number(Double(maxTokens)) }
        if let temperature = c.temperature { body["temperature"] = .number(temperature) }
        if let topP = c.topP { body["top_p"] = .number(topP) }
        if let seed = c.seed { body["seed"] = .number(Double(seed)) }
        if !c.stop.isEmpty { body["stop"] = .array(c.stop.map(JSONValue.string)) }
        if c.logprobs {
            body["logprobs"] = .bool(true)
            body["top_logprobs"] = .number(0)
        }
        body["stream"] = .bool(c.stream)
        // Without it most servers send no usage at all when streaming.
        if c.stream { body["stream_options"] = .object(["include_usage": .bool(true)]) }
        for (key, value) in c.extraBody { body[key] = value }
        return body
    }

    static func message(_ m: ChatMessage) -> JSONValue {
        var object: [String: JSONValue] = ["role": .string(m.role.rawValue), "content": .string(m.content)]
        if let calls = m.toolCalls, !calls.isEmpty {
            object["tool_calls"] = .array(calls.map { call in
                .object([
                    "id": .string(call.id),
                    "type": .string("function"),
                    "function": .object(["name": .string(call.name), "arguments": .string(call.arguments)]),
                ])
            })
        }
        if let id = m.toolCallID { object["tool_call_id"] = .string(id) }
        if let name = m.name { object["name"] = .string(name) }
        return .object(object)
    }

    static func encode(_ body: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(body)
    }

    /// A problem with a 2xx body; retried like a 5xx, then reported as `.invalidResponse`.
    struct InvalidResponse: Error {
        var problem: String
    }

    /// Parses a 2xx chat-completions body. Latency and attempts are filled in by the caller.
    static func parseResponse(_ data: Data) throws(InvalidResponse) -> ModelResponse {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw InvalidResponse(problem: "the body is not valid JSON (\(excerpt(data)))")
        }
        guard case let .object(top) = root else {
            throw InvalidResponse(problem: "the body is not a JSON object (\(excerpt(data)))")
        }
        if let error = top["error"], error != .null {
            throw InvalidResponse(problem: "the server returned an error in a 2xx reply: \(errorMessage(top) ?? "?")")
        }
        guard case let .array(choices)? = top["choices"] else {
            throw InvalidResponse(problem: "the body has no `choices` list (\(excerpt(data)))")
        }
        guard let first = choices.first else {
            throw InvalidResponse(problem: "the `choices` list is empty")
        }
        guard case let .object(choice) = first, case let .object(message)? = choice["message"] else {
            throw InvalidResponse(problem: "choices[0] has no `message` object")
        }

        let content: String
        switch message["content"] {
        case nil, .null?: content = ""
        case let .string(text)?: content = text
        case let .array(parts)?:
            // Some servers return content as typed parts; keep the text ones.
            content = parts.compactMap { part in
                if case let .object(p) = part, case let .string(text)? = p["text"] { return text }
                return nil
            }.joined()
        case .some:
            throw InvalidResponse(problem: "choices[0].message.content is neither a string nor null")
        }

        var reasoning: String?
        for key in ["reasoning_content", "reasoning"] {
            if case let .string(text)? = message[key] { reasoning = text; break }
        }

        var toolCalls: [ToolCall] = []
        if case let .array(calls)? = message["tool_calls"] {
            for (index, item) in calls.enumerated() {
                guard case let .object(call) = item, case let .object(function)? = call["function"],
                      case let .string(name)? = function["name"]
                else {
                    throw InvalidResponse(problem: "choices[0].message.tool_calls[\(index)] has no function name")
                }
                let arguments: String
                switch function["arguments"] {
                case let .string(text)?: arguments = text
                case nil, .null?: arguments = ""
                case let value?:
                    // A server that sends arguments as an object: keep them as the JSON text they mean.
                    arguments = (try? encode(value)).flatMap { String(data: $0, encoding: .utf8) } ?? ""
                }
                let id: String
                if case let .string(text)? = call["id"], !text.isEmpty { id = text } else { id = "call_\(index)" }
                toolCalls.append(ToolCall(id: id, name: name, arguments: arguments))
            }
        }

        var logprobs: [TokenLogprob]?
        if case let .object(lp)? = choice["logprobs"], case let .array(tokens)? = lp["content"] {
            logprobs = tokens.compactMap { item in
                guard case let .object(t) = item, case let .string(token)? = t["token"],
                      case let .number(value)? = t["logprob"] else { return nil }
                return TokenLogprob(token: token, logprob: value)
            }
        }

        var promptTokens: Int?
        var completionTokens: Int?
        if case let .object(usage)? = top["usage"] {
            if case let .number(n)? = usage["prompt_tokens"] { promptTokens = Int(exactly: n.rounded()) }
            if case let .number(n)? = usage["completion_tokens"] { completionTokens = Int(exactly: n.rounded()) }
        }
        var finishReason: String?
        if case let .string(text)? = choice["finish_reason"] { finishReason = text }
        var model: String?
        if case let .string(text)? = top["model"] { model = text }

        // vLLM: `prompt_token_ids` at the top and `token_ids` on the choice; SGLang:
        // `prompt_token_ids` and `response_token_ids` on the choice.
        func ids(_ value: JSONValue?) -> [Int]? {
            guard case let .array(items)? = value else { return nil }
            let numbers = items.compactMap { item -> Int? in if case let .number(n) = item { Int(exactly: n) } else { nil } }
            return numbers.count == items.count ? numbers : nil
        }
        return ModelResponse(
            content: content, reasoning: reasoning, toolCalls: toolCalls, finishReason: finishReason, model: model,
            promptTokens: promptTokens, completionTokens: completionTokens, logprobs: logprobs,
            promptTokenIDs: ids(top["prompt_token_ids"] ?? choice["prompt_token_ids"]),
            completionTokenIDs: ids(choice["token_ids"] ?? choice["response_token_ids"]),
            policyVersionAtStart: model, policyVersionAtEnd: model
        )
    }

    /// The message of an error body in the OpenAI (`{"error": {"message"}}`), vLLM
    /// (`{"message"}`) or FastAPI (`{"detail"}`) shape.
    static func errorMessage(_ top: [String: JSONValue]) -> String? {
        if case let .object(error)? = top["error"], case let .string(message)? = error["message"] { return message }
        if case let .string(message)? = top["error"] { return message }
        if case let .string(message)? = top["message"] { return message }
        if case let .string(message)? = top["detail"] { return message }
        return nil
    }

    /// Whether a 4xx body says the prompt does not fit, in the words vLLM, SGLang, OpenAI and
    /// llama.cpp use.
    static func isContextLengthError(status: Int, body: Data) -> Bool {
        guard status == 400 || status == 413 || status == 422 else { return false }
        let text = String(decoding: body.prefix(64 << 10), as: UTF8.self).lowercased()
        let phrases = [
            "context_length_exceeded", "context length", "maximum context", "context window",
            "context size", "exceed_context_size", "prompt is too long", "too many tokens",
        ]
        return phrases.contains { text.contains($0) }
    }

    /// A one-line excerpt of a body for error messages.
    static func excerpt(_ data: Data, limit: Int = 300) -> String {
        if data.isEmpty { return "empty body" }
        var text = String(decoding: data.prefix(limit * 4), as: UTF8.self)
        if let top = try? JSONDecoder().decode([String: JSONValue].self, from: data), let message = errorMessage(top) {
            text = message
        }
        text = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        if text.count > limit { text = String(text.prefix(limit)) + "..." }
        return text
    }
}
