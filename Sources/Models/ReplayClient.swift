import Foundation
import Synchronization
import WardenCore

/// Replays recorded responses in order; throws `ModelError.exhausted` when none are left.
///
/// Load one from a JSON list of responses (strings, or objects `{content, tool_calls?,
/// reasoning?}`) or from a Warden trajectory (JSONL; each `"type": "step"` line's `response`)
/// with ``load(url:)``.
public final class ReplayClient: ModelClient {
    public let name: String
    private let responses: [ModelResponse]
    private let next = Mutex(0)

    public init(responses: [ModelResponse], name: String = "replay") {
        self.responses = responses
        self.name = name
    }

    /// Responses with these contents and nothing else.
    public convenience init(contents: [String], name: String = "replay") {
        self.init(responses: contents.map { ModelResponse(content: $0) }, name: name)
    }

    /// How many responses have not been replayed yet.
    public var remaining: Int {
        next.withLock { responses.count - $0 }
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let index = next.withLock { index -> Int in
            defer { if index < responses.count { index += 1 } }
            return index
        }
        guard index < responses.count else {
            throw ModelError(.exhausted, "\(name) has no more responses (all \(responses.count) replayed)")
        }
        return responses[index]
    }

    /// Loads a replay file, telling the two formats apart by their first character: `[` for a
    /// JSON list, `{` for a trajectory. Errors are `WardenError` `replay.invalid` naming the file
    /// and the item or line.
    public static func load(url: URL) throws -> ReplayClient {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw WardenError("replay.unreadable", "cannot read the replay file: \(error.localizedDescription)",
                              context: url.path)
        }
        let name = "replay:\(url.lastPathComponent)"
        let first = data.first { !(Character(UnicodeScalar($0)).isWhitespace) }
        switch first {
        case UInt8(ascii: "["):
            return ReplayClient(responses: try ReplayFormat.list(data, path: url.path), name: name)
        case UInt8(ascii: "{"):
            return ReplayClient(responses: try ReplayFormat.trajectory(data, path: url.path), name: name)
        default:
            throw WardenError(
                "replay.invalid",
                "expected a JSON list of responses or a trajectory (JSON lines with \"type\": \"step\")",
                context: url.path
            )
        }
    }
}

/// Parsing of replay files into responses, with errors that point at the item or line.
enum ReplayFormat {
    static func list(_ data: Data, path: String) throws -> [ModelResponse] {
        let items: [JSONValue]
        do {
            items = try JSONDecoder().decode([JSONValue].self, from: data)
        } catch {
            throw WardenError("replay.invalid", "not a valid JSON list: \(describe(error))", context: path)
        }
        return try items.enumerated().map { index, item in
            let context = "\(path): item \(index + 1)"
            switch item {
            case let .string(content):
                return ModelResponse(content: content)
            case let .object(object):
                return try response(object, context: context)
            default:
                throw WardenError("replay.invalid", "each item must be a string or an object with \"content\"",
                                  context: context)
            }
        }
    }

    static func trajectory(_ data: Data, path: String) throws -> [ModelResponse] {
        var responses: [ModelResponse] = []
        let text = String(decoding: data, as: UTF8.self)
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.allSatisfy(\.isWhitespace) { continue }
            let context = "\(path):\(lineNumber)"
            let value: JSONValue
            do {
                value = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
            } catch {
                throw WardenError("replay.invalid", "not a valid JSON line: \(describe(error))", context: context)
            }
            guard case let .object(object) = value else {
                throw WardenError("replay.invalid", "each line must be a JSON object", context: context)
            }
            guard case .string("step")? = object["type"] else { continue }
            guard case let .object(response)? = object["response"] else {
                throw WardenError("replay.invalid", "a step line needs a \"response\" object", context: context)
            }
            responses.append(try self.response(response, context: context))
        }
        if responses.isEmpty {
            throw WardenError("replay.invalid", "the trajectory has no step lines with a response", context: path)
        }
        return responses
    }

    /// A response from an object in either spelling: the Swift struct's camelCase keys (as
    /// trajectories store it) or the snake_case of the OpenAI wire format.
    static func response(_ object: [String: JSONValue], context: String) throws -> ModelResponse {
        func string(_ keys: String...) throws -> String? {
            for key in keys {
                switch object[key] {
                case nil, .null?: continue
                case let .string(text)?: return text
                default: throw WardenError("replay.invalid", "\"\(key)\" must be a string", context: context)
                }
            }
            return nil
        }
        func number(_ keys: String...) throws -> Double? {
            for key in keys {
                switch object[key] {
                case nil, .null?: continue
                case let .number(value)?: return value
                default: throw WardenError("replay.invalid", "\"\(key)\" must be a number", context: context)
                }
            }
            return nil
        }
        func integer(_ keys: String...) throws -> Int? {
            for key in keys {
                if let value = try number(key) { return Int(exactly: value.rounded()) }
            }
            return nil
        }

        guard object["content"] != nil else {
            throw WardenError("replay.invalid", "a response needs \"content\" (a string or null)", context: context)
        }
        var response = ModelResponse(content: try string("content") ?? "")
        response.reasoning = try string("reasoning", "reasoning_content")
        response.finishReason = try string("finishReason", "finish_reason")
        response.model = try string("model")
        response.promptTokens = try integer("promptTokens", "prompt_tokens")
        response.completionTokens = try integer("completionTokens", "completion_tokens")
        response.latencyMs = try number("latencyMs") ?? 0
        response.attempts = try integer("attempts") ?? 1

        for key in ["toolCalls", "tool_calls"] {
            switch object[key] {
            case nil, .null?: continue
            case let .array(calls)?:
                response.toolCalls = try calls.enumerated().map { index, call in
                    try toolCall(call, index: index, context: "\(context): \(key)[\(index)]")
                }
            default:
                throw WardenError("replay.invalid", "\"\(key)\" must be a list", context: context)
            }
            break
        }

        if case let .array(items)? = object["logprobs"] {
            response.logprobs = try items.map { item in
                guard case let .object(entry) = item, case let .string(token)? = entry["token"],
                      case let .number(logprob)? = entry["logprob"]
                else {
                    throw WardenError("replay.invalid", "each logprob needs \"token\" and \"logprob\"", context: context)
                }
                return TokenLogprob(token: token, logprob: logprob)
            }
        }
        return response
    }

    /// A tool call as `{id?, name, arguments}` or in the wire shape `{id?, function: {name, arguments}}`;
    /// arguments may be JSON text or a JSON object.
    static func toolCall(_ value: JSONValue, index: Int, context: String) throws -> ToolCall {
        guard case var .object(call) = value else {
            throw WardenError("replay.invalid", "a tool call must be an object", context: context)
        }
        var id = "call_\(index)"
        if case let .string(text)? = call["id"], !text.isEmpty { id = text }
        if case let .object(function)? = call["function"] { call = function }
        guard case let .string(name)? = call["name"] else {
            throw WardenError("replay.invalid", "a tool call needs a \"name\"", context: context)
        }
        let arguments: String
        switch call["arguments"] {
        case nil, .null?: arguments = "{}"
        case let .string(text)?: arguments = text
        case let value?:
            arguments = (try? OpenAIWire.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
        return ToolCall(id: id, name: name, arguments: arguments)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case let DecodingError.dataCorrupted(context):
            return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        default:
            return "\(error)"
        }
    }
}
