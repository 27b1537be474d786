/// One message of a chat conversation, in the OpenAI chat-completions shape.
public struct ChatMessage: Sendable, Codable, Hashable {
    public enum Role: String, Sendable, Codable, Hashable {
        case system, user, assistant, tool
    }

    public var role: Role
    public var content: String
    /// Native tool calls of an assistant message (the `tools` protocol).
    public var toolCalls: [ToolCall]?
    /// The call a `tool` message answers.
    public var toolCallID: String?
    /// The tool's name, for `tool` messages.
    public var name: String?

    public init(role: Role, content: String, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil, name: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.name = name
    }
}

/// A function call the model asked for; `arguments` is the JSON text the model wrote.
public struct ToolCall: Sendable, Codable, Hashable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// A tool offered to the model through function calling, with its JSON schema.
public struct ToolSchema: Sendable, Codable, Hashable {
    public var name: String
    public var description: String
    public var parameters: JSONValue

    public init(name: String, description: String, parameters: JSONValue) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// What the agent loop asks of a model for one turn.
public struct ModelRequest: Sendable, Hashable {
    public var messages: [ChatMessage]
    /// Tools for native function calling; empty for text protocols.
    public var tools: [ToolSchema]
    /// Cap on the response's tokens for this turn.
    public var maxTokens: Int?

    public init(messages: [ChatMessage], tools: [ToolSchema] = [], maxTokens: Int? = nil) {
        self.messages = messages
        self.tools = tools
        self.maxTokens = maxTokens
    }
}

/// The log-probability of one generated token.
public struct TokenLogprob: Sendable, Codable, Hashable {
    public var token: String
    public var logprob: Double

    public init(token: String, logprob: Double) {
        self.token = token
        self.logprob = logprob
    }
}

/// A model's answer for one turn, with the call's metadata.
public struct ModelResponse: Sendable, Codable, Hashable {
    /// The message text, reasoning included when the server returns it inline.
    public var content: String
    /// Reasoning the server returned separately (`reasoning_content`), if any.
    public var reasoning: String?
    public var toolCalls: [ToolCall]
    public var finishReason: String?
    /// The model name the server reported: the policy version, which may change mid-episode.
    public var model: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var latencyMs: Double
    /// HTTP attempts this turn took, retries included.
    public var attempts: Int
    /// The sampled tokens' log-probabilities, when asked for and returned.
    public var logprobs: [TokenLogprob]?
    /// The prompt's token ids as the server tokenized it (vLLM and SGLang, when asked).
    public var promptTokenIDs: [Int]?
    /// The completion's token ids (vLLM's `token_ids`, SGLang's `response_token_ids`).
    public var completionTokenIDs: [Int]?
    /// The `model` the server reported in the call's first chunk (the one reply when not
    /// streamed): with eagerly pushed checkpoints the policy can change during one call.
    public var policyVersionAtStart: String?
    /// The `model` the server reported in the call's last chunk that had one.
    public var policyVersionAtEnd: String?

    public init(content: String, reasoning: String? = nil, toolCalls: [ToolCall] = [], finishReason: String? = nil,
                model: String? = nil, promptTokens: Int? = nil, completionTokens: Int? = nil, latencyMs: Double = 0,
                attempts: Int = 1, logprobs: [TokenLogprob]? = nil, promptTokenIDs: [Int]? = nil,
                completionTokenIDs: [Int]? = nil, policyVersionAtStart: String? = nil, policyVersionAtEnd: String? = nil) {
        self.content = content
        self.reasoning = reasoning
        self.toolCalls = toolCalls
        self.finishReason = finishReason
        self.model = model
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.latencyMs = latencyMs
        self.attempts = attempts
        self.logprobs = logprobs
        self.promptTokenIDs = promptTokenIDs
        self.completionTokenIDs = completionTokenIDs
        self.policyVersionAtStart = policyVersionAtStart
        self.policyVersionAtEnd = policyVersionAtEnd
    }
}

/// Why a model could not answer a turn. The agent loop turns each kind into an exit status.
public struct ModelError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        /// The prompt no longer fits the model's context window.
        case contextLength = "context_length"
        /// The server kept failing (429, 5xx, timeouts, connection errors) past the retry budget.
        case unavailable
        /// A non-retryable refusal (4xx other than 429), e.g. a bad API key or model name.
        case rejected
        /// The server answered with something that is not a usable completion.
        case invalidResponse = "invalid_response"
        /// A replayed or scripted model has no more responses.
        case exhausted
        case cancelled
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// Anything that can answer the agent loop's turns: an HTTP endpoint, a replay, the oracle, a person.
public protocol ModelClient: Sendable {
    /// A short description for trajectories and logs (never a secret).
    var name: String { get }
    func complete(_ request: ModelRequest) async throws -> ModelResponse
}
