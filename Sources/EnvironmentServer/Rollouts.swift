import Agent
import Foundation
import Logging
import Models
import WardenCore

/// `POST /v1/rollouts`: a whole episode run against the trainer's OpenAI-compatible server.
struct RolloutRequest: Sendable, Decodable {
    struct Sampling: Sendable, Decodable {
        var temperature: Double?
        var topP: Double?
        var maxTokens: Int?
        var seed: Int?
        var stop: [String]?
        enum CodingKeys: String, CodingKey { case temperature, topP = "top_p", maxTokens = "max_tokens", seed, stop }
    }

    var taskID: String
    var baseURL: String
    var model: String
    var apiKey: String?
    var sampling: Sampling?
    var `protocol`: ProtocolName?
    var limits: LimitOverrides?
    var rewards: RewardScheme?
    var episodeID: String?
    /// Stream the reply (default) or take it whole.
    var stream: Bool?

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", baseURL = "base_url", model, apiKey = "api_key", sampling, `protocol`, limits, rewards
        case episodeID = "episode_id", stream
    }
}

/// Runs rollouts: the registry's episode, the agent loop, and an OpenAI client that asks for
/// logprobs and token ids.
struct Rollouts: Sendable {
    let registry: EpisodeRegistry

    /// Closes the rollout's HTTP client; a failure to close leaks nothing the rollout needs, so
    /// it is logged at debug and the rollout's own outcome stands.
    static func shutdown(_ client: OpenAIClient) async {
        do { try await client.shutdown() } catch {
            Logger(label: "warden.serve").debug("the rollout's model client did not shut down cleanly", metadata: ["cause": "\(error)"])
        }
    }

    func run(_ request: RolloutRequest) async throws -> JSONValue {
        var configuration = OpenAIClient.Configuration(
            baseURL: request.baseURL, model: request.model, apiKey: request.apiKey,
            temperature: request.sampling?.temperature, topP: request.sampling?.topP, seed: request.sampling?.seed,
            stop: request.sampling?.stop ?? [], logprobs: true, stream: request.stream ?? true)
        configuration.maxTokens = request.sampling?.maxTokens
        configuration.extraBody["return_token_ids"] = .bool(true)
        let client: OpenAIClient
        do { client = try OpenAIClient(configuration: configuration) } catch {
            throw ServerError(.validationError, "the model server cannot be used: \(error)")
        }
        let reset = ResetRequest(taskID: request.taskID, episodeID: request.episodeID, protocol: request.protocol,
                                 limits: request.limits, rewards: request.rewards)
        let opened: (id: String, episode: Episode, opening: [ChatMessage])
        do { opened = try await registry.open(reset, modelName: "openai:\(request.model)") } catch {
            await Self.shutdown(client)
            throw error
        }
        let final: TrajectoryFinal
        do {
            final = try await AgentLoop(model: client, episode: opened.episode).run()
        } catch {
            await Self.shutdown(client)
            await registry.close(opened.id)
            throw ServerError(.executionError, "the rollout failed: \(error)")
        }
        await Self.shutdown(client)
        let steps = await opened.episode.steps
        let messages = await opened.episode.messages
        await registry.close(opened.id)
        return Self.result(id: opened.id, taskID: request.taskID, final: final, steps: steps, messages: messages,
                           rewards: request.rewards ?? registry.settings.rewards)
    }

    /// The rollout as trainers take it: per-turn token ids, logprobs and policy versions, a
    /// flattened sequence with its loss mask where the turns chain, the reward and the ending.
    static func result(id: String, taskID: String, final: TrajectoryFinal, steps: [TrajectoryStep], messages: [ChatMessage],
                       rewards: RewardScheme) -> JSONValue {
        func ints(_ values: [Int]?) -> JSONValue { values.map { .array($0.map { .number(Double($0)) }) } ?? .null }
        let turns: [JSONValue] = steps.map { step in
            let response = step.response
            return .object([
                "step": .number(Double(step.index)),
                "prompt_token_ids": ints(response.promptTokenIDs),
                "completion_token_ids": ints(response.completionTokenIDs),
                "logprobs": response.logprobs.map { .array($0.map { .object(["token": .string($0.token), "logprob": .number($0.logprob)]) }) } ?? .null,
                "loss_mask": response.completionTokenIDs.map { .array($0.map { _ in .number(1) }) } ?? .null,
                "policy_version_start": (response.policyVersionAtStart ?? response.model).map { .string($0) } ?? .null,
                "policy_version_end": (response.policyVersionAtEnd ?? response.model).map { .string($0) } ?? .null,
                "response": .string(response.content),
                "observation": .array(step.observation.map(\.openAIValue)),
                "exit_code": step.exitCode.map { .number(Double($0)) } ?? .null,
                "format_error": step.formatError.map { .string($0) } ?? .null,
            ])
        }
        let versions = steps.flatMap { [$0.response.policyVersionAtStart, $0.response.policyVersionAtEnd, $0.response.model].compactMap { $0 } }
        var distinct: [String] = []
        for version in versions where !distinct.contains(version) { distinct.append(version) }
        let envError: String? = switch final.exitStatus {
        case .sandboxError, .modelError: final.detail ?? final.exitStatus.rawValue
        default: final.scoreError.map { "scoring failed: \($0)" }
        }
        return .object([
            "episode_id": .string(id),
            "task_id": .string(taskID),
            "reward": final.score.map { .number(rewards.reward(resolved: $0.resolved)) } ?? .null,
            "done": .bool(true),
            "exit_status": .string(final.exitStatus.rawValue),
            "resolved": final.score.map { .bool($0.resolved) } ?? .null,
            "env_error": envError.map { .string($0) } ?? .null,
            "policy_versions": .array(distinct.map { .string($0) }),
            "policy_changed": .bool(distinct.count > 1),
            "turns": .array(turns),
            "sequence": flattened(steps),
            "messages": .array(messages.map(\.openAIValue)),
            "submission": final.submission.map { .string($0) } ?? .null,
        ])
    }

    /// One token sequence for the whole episode, as verl's agent loop builds it: the first
    /// prompt, then each completion (mask 1, its logprobs) and the tokens the next prompt adds
    /// after it (mask 0: observations). Null when a server gave no token ids, or a prompt does
    /// not extend the previous prompt and completion (the chat template re-rendered history).
    static func flattened(_ steps: [TrajectoryStep]) -> JSONValue {
        var ids: [Int] = [], mask: [Int] = [], logprobs: [Double?] = []
        for step in steps {
            guard let prompt = step.response.promptTokenIDs, let completion = step.response.completionTokenIDs else {
                return .object(["token_ids": .null, "reason": .string("step \(step.index) has no token ids")])
            }
            guard prompt.count >= ids.count, Array(prompt.prefix(ids.count)) == ids else {
                return .object(["token_ids": .null, "reason": .string("step \(step.index)'s prompt does not extend the previous turns' tokens")])
            }
            let added = prompt.dropFirst(ids.count)
            ids += added
            mask += added.map { _ in 0 }
            logprobs += added.map { _ in nil }
            ids += completion
            mask += completion.map { _ in 1 }
            let values = step.response.logprobs?.map(\.logprob) ?? []
            logprobs += completion.indices.map { $0 < values.count ? values[$0] : nil }
        }
        return .object([
            "token_ids": .array(ids.map { .number(Double($0)) }),
            "loss_mask": .array(mask.map { .number(Double($0)) }),
            "logprobs": .array(logprobs.map { $0.map { .number($0) } ?? .null }),
        ])
    }
}
