import Agent
import Foundation
import Models
import WardenCore

// The shapes on the wire. OpenEnv's own (meta-pytorch/OpenEnv `types.py`, `http_server.py`):
// reset and step answer `{observation, reward, done}`; WebSocket messages are
// `{"type": ..., "data": ...}`; errors carry one of OpenEnv's codes. Keys are snake_case.

/// OpenEnv's WebSocket error codes (`WSErrorCode`).
public enum ErrorCode: String, Sendable, Codable {
    case invalidJSON = "INVALID_JSON"
    case unknownType = "UNKNOWN_TYPE"
    case validationError = "VALIDATION_ERROR"
    case executionError = "EXECUTION_ERROR"
    case capacityReached = "CAPACITY_REACHED"
    case factoryError = "FACTORY_ERROR"
    case sessionError = "SESSION_ERROR"
}

/// A failure answered to the client: an OpenEnv code, a message, and for capacity the counts.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var activeSessions: Int?
    public var maxSessions: Int?

    init(_ code: ErrorCode, _ message: String, activeSessions: Int? = nil, maxSessions: Int? = nil) {
        self.code = code
        self.message = message
        self.activeSessions = activeSessions
        self.maxSessions = maxSessions
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The `data` of an error message: `{message, code, active_sessions?, max_sessions?}`.
    var data: JSONValue {
        var object: [String: JSONValue] = ["message": .string(message), "code": .string(code.rawValue)]
        if let activeSessions { object["active_sessions"] = .number(Double(activeSessions)) }
        if let maxSessions { object["max_sessions"] = .number(Double(maxSessions)) }
        return .object(object)
    }
}

/// What `reset` takes: OpenEnv's `seed` and `episode_id`, and the task with its options.
public struct ResetRequest: Sendable, Decodable {
    public var taskID: String
    public var episodeID: String?
    public var seed: Int?
    public var `protocol`: ProtocolName?
    public var limits: LimitOverrides?
    public var rewards: RewardScheme?

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", episodeID = "episode_id", seed, `protocol`, limits, rewards
    }

    public init(taskID: String, episodeID: String? = nil, seed: Int? = nil, protocol: ProtocolName? = nil,
                limits: LimitOverrides? = nil, rewards: RewardScheme? = nil) {
        self.taskID = taskID
        self.episodeID = episodeID
        self.seed = seed
        self.protocol = `protocol`
        self.limits = limits
        self.rewards = rewards
    }
}

/// The episode limits a reset may set; absent ones keep the server's configuration.
public struct LimitOverrides: Sendable, Codable, Hashable {
    public var maxSteps: Int?
    public var maxContextTokens: Int?
    public var commandTimeoutSeconds: Double?
    public var wallTimeSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case maxSteps = "max_steps", maxContextTokens = "max_context_tokens"
        case commandTimeoutSeconds = "command_timeout_seconds", wallTimeSeconds = "wall_time_seconds"
    }

    func applied(to limits: AgentConfiguration.Limits) -> AgentConfiguration.Limits {
        var limits = limits
        if let maxSteps { limits.maxSteps = maxSteps }
        if let maxContextTokens { limits.maxContextTokens = maxContextTokens }
        if let commandTimeoutSeconds { limits.commandTimeoutSeconds = commandTimeoutSeconds }
        if let wallTimeSeconds { limits.wallTimeSeconds = wallTimeSeconds }
        return limits
    }
}

/// A native tool call, in the OpenAI shape (`{id, type, function: {name, arguments}}`) or flat
/// (`{id, name, arguments}`).
public struct WireToolCall: Sendable, Decodable {
    var id: String
    var name: String
    var arguments: String

    enum CodingKeys: String, CodingKey { case id, name, arguments, function }
    struct Function: Decodable { var name: String; var arguments: String }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decodeIfPresent(String.self, forKey: .id) ?? "call_0"
        if let function = try container.decodeIfPresent(Function.self, forKey: .function) {
            name = function.name
            arguments = function.arguments
        } else {
            name = try container.decode(String.self, forKey: .name)
            arguments = try container.decode(String.self, forKey: .arguments)
        }
    }
}

/// What `step` takes: the model's raw response text or its native tool calls, and what the
/// sampler knows about it (policy version, token ids, logprobs). Parsed with the episode's
/// protocol exactly as the agent loop parses a model's reply.
public struct StepAction: Sendable, Decodable {
    public var response: String?
    public var toolCalls: [WireToolCall]?
    public var reasoning: String?
    public var modelVersion: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var promptTokenIDs: [Int]?
    public var completionTokenIDs: [Int]?
    public var logprobs: [TokenLogprob]?
    /// Over HTTP, the episode the step is for (also accepted beside `action`).
    public var episodeID: String?

    enum CodingKeys: String, CodingKey {
        case response, toolCalls = "tool_calls", reasoning, modelVersion = "model_version"
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens"
        case promptTokenIDs = "prompt_token_ids", completionTokenIDs = "completion_token_ids", logprobs, episodeID = "episode_id"
    }

    /// The response as the episode records it.
    var modelResponse: ModelResponse {
        ModelResponse(content: response ?? "", reasoning: reasoning,
                      toolCalls: (toolCalls ?? []).map { ToolCall(id: $0.id, name: $0.name, arguments: $0.arguments) },
                      model: modelVersion, promptTokens: promptTokens, completionTokens: completionTokens, logprobs: logprobs)
    }
}

/// OpenEnv's HTTP step body: `{action, timeout_s?, request_id?}`, plus the episode it is for.
struct HTTPStepRequest: Decodable {
    var action: StepAction
    var episodeID: String?
    var requestID: String?

    enum CodingKeys: String, CodingKey { case action, episodeID = "episode_id", requestID = "request_id" }
}

/// An episode addressed over HTTP.
struct EpisodeReference: Decodable {
    var episodeID: String
    enum CodingKeys: String, CodingKey { case episodeID = "episode_id" }
}

/// A fork request: the live episode and the last step the fork keeps.
struct ForkRequest: Decodable {
    var episodeID: String
    var step: Int
    var newEpisodeID: String?
    enum CodingKeys: String, CodingKey { case episodeID = "episode_id", step, newEpisodeID = "new_episode_id" }
}

/// Builds the `{observation, reward, done}` payload of reset and step.
enum Payload {
    static func opening(episodeID: String, taskID: String, messages: [ChatMessage], tools: [ToolSchema]) -> JSONValue {
        .object([
            "observation": .object([
                "episode_id": .string(episodeID),
                "task_id": .string(taskID),
                "messages": .array(messages.map(\.openAIValue)),
                "tools": .array(tools.map(Self.tool)),
                "step": .number(0),
            ]),
            "reward": .null,
            "done": .bool(false),
        ])
    }

    static func step(episodeID: String, _ result: EpisodeStepResult) -> JSONValue {
        .object([
            "observation": .object([
                "episode_id": .string(episodeID),
                "messages": .array(result.observation.map(\.openAIValue)),
                "step": .number(Double(result.info.step)),
                "info": info(result.info),
            ]),
            "reward": result.reward.map { .number($0) } ?? .null,
            "done": .bool(result.done),
        ])
    }

    static func info(_ info: EpisodeStepInfo) -> JSONValue {
        var object: [String: JSONValue] = [
            "exit_code": info.exitCode.map { .number(Double($0)) } ?? .null,
            "changes": .array(info.changes.map { .object(["path": .string($0.path), "status": .string($0.status.rawValue)]) }),
            "env_error": info.envError.map { .string($0) } ?? .null,
        ]
        if let problem = info.formatError { object["format_error"] = .string(problem) }
        if let status = info.exitStatus { object["exit_status"] = .string(status.rawValue) }
        if let score = info.score {
            object["score"] = .object([
                "resolved": .bool(score.resolved),
                "resolution": score.resolution.map { .string($0.rawValue) } ?? .null,
                "fail_to_pass": .object(["passed": .number(Double(score.testsStatus?.failToPass.success.count ?? 0)),
                                         "failed": .number(Double(score.testsStatus?.failToPass.failure.count ?? 0))]),
                "pass_to_pass": .object(["passed": .number(Double(score.testsStatus?.passToPass.success.count ?? 0)),
                                         "failed": .number(Double(score.testsStatus?.passToPass.failure.count ?? 0))]),
            ])
        }
        return .object(object)
    }

    static func tool(_ schema: ToolSchema) -> JSONValue {
        .object(["type": .string("function"), "function": .object([
            "name": .string(schema.name), "description": .string(schema.description), "parameters": schema.parameters,
        ])])
    }
}
