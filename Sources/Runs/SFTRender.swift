import Agent
import Foundation
import WardenCore

/// The shape of an SFT row: OpenAI chat messages as recorded, or CWM's text protocol.
public enum SFTFormat: String, Sendable, Hashable, CaseIterable, Codable {
    /// The conversation as the model saw it: native `tool_calls` and `tool` turns for the tools
    /// protocol, raw text and `user` turns otherwise.
    case openai
    /// Every trajectory rewritten in CWM's protocol: `<tool: NAME>` calls and `tool: NAME` turns
    /// with `<output>` and `<budget>`, whatever protocol it ran with.
    case cwm
}

/// One message of an SFT row. `role` is a string because CWM's observations are `tool: NAME`.
public struct SFTMessage: Sendable, Codable, Hashable {
    public struct FunctionCall: Sendable, Codable, Hashable {
        public var name: String
        public var arguments: String
    }

    /// A native tool call in the OpenAI wire shape: `{id, type: "function", function: {name, arguments}}`.
    public struct ToolCall: Sendable, Codable, Hashable {
        public var id: String
        public var type: String
        public var function: FunctionCall

        public init(id: String, name: String, arguments: String) {
            self.id = id
            self.type = "function"
            self.function = FunctionCall(name: name, arguments: arguments)
        }
    }

    public var role: String
    public var content: String
    public var toolCalls: [ToolCall]?
    public var toolCallID: String?
    public var name: String?
    /// Reasoning the server returned apart from the content (`reasoning_content`).
    public var reasoningContent: String?

    public init(role: String, content: String, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil, name: String? = nil,
                reasoningContent: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.name = name
        self.reasoningContent = reasoningContent
    }

    /// A recorded chat message, unchanged.
    init(_ message: ChatMessage) {
        self.init(role: message.role.rawValue, content: message.content,
                  toolCalls: message.toolCalls.map { $0.map { ToolCall(id: $0.id, name: $0.name, arguments: $0.arguments) } },
                  toolCallID: message.toolCallID, name: message.name)
    }

    /// Every byte that is trained on or conditioned on: content, separate reasoning and tool calls.
    var utf8Count: Int {
        content.utf8.count + (reasoningContent?.utf8.count ?? 0)
            + (toolCalls ?? []).reduce(0) { $0 + $1.function.name.utf8.count + $1.function.arguments.utf8.count }
    }

    enum CodingKeys: String, CodingKey {
        case role, content, toolCalls = "tool_calls", toolCallID = "tool_call_id", name, reasoningContent = "reasoning_content"
    }
}

/// A function offered to the model, in the OpenAI wire shape `{type: "function", function: {...}}`.
public struct SFTTool: Sendable, Codable, Hashable {
    public struct Function: Sendable, Codable, Hashable {
        public var name: String
        public var description: String
        public var parameters: JSONValue
    }

    public var type = "function"
    public var function: Function
}

/// One line of the SFT file: the conversation and where it came from.
public struct SFTRow: Sendable, Codable, Hashable {
    public var messages: [SFTMessage]
    /// The functions offered (openai format of a tools-protocol run); nil otherwise.
    public var tools: [SFTTool]?
    public var instanceID: String
    public var attempt: Int
    /// The model client's name from the trajectory header.
    public var model: String
    /// The protocol the episode ran with (the row's format may differ).
    public var `protocol`: String
    public var steps: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var resolved: Bool
    /// The run directory's name.
    public var run: String
    /// ceil(UTF-8 bytes / 4) over every message's content, reasoning and tool calls: an estimate,
    /// not a tokenizer's count.
    public var estimatedTokens: Int

    enum CodingKeys: String, CodingKey {
        case messages, tools, instanceID = "instance_id", attempt, model, `protocol`, steps
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", resolved, run
        case estimatedTokens = "estimated_tokens"
    }
}

/// Turns a trajectory into SFT messages.
public enum SFTRenderer {
    /// The row for one attempt in `format`; `result` supplies the totals and the resolution.
    public static func row(_ trajectory: Trajectory, result: AttemptResult, run: String, format: SFTFormat) -> SFTRow {
        let rendered = switch format {
        case .openai: openAIMessages(trajectory)
        case .cwm: cwmMessages(trajectory)
        }
        let messages = endingWithAssistant(rendered)
        let tools: [SFTTool]? = format == .openai && !trajectory.header.tools.isEmpty
            ? trajectory.header.tools.map { SFTTool(function: .init(name: $0.name, description: $0.description, parameters: $0.parameters)) }
            : nil
        return SFTRow(
            messages: messages, tools: tools, instanceID: result.instanceID, attempt: result.attempt, model: trajectory.header.model,
            protocol: trajectory.header.configuration.protocol.rawValue, steps: result.steps, promptTokens: result.promptTokens,
            completionTokens: result.completionTokens, resolved: result.resolved, run: run,
            estimatedTokens: estimatedTokens(messages))
    }

    /// The conversation up to its last assistant turn. Trainers learn from assistant turns and
    /// expect a row to end with one: what follows the last (the observation of the final
    /// `submit`, or of the step a limit cut short) teaches nothing. CWM's ending (submit, its
    /// observation, then a final reply without a tool call) keeps the submit's observation,
    /// since the final reply follows it.
    static func endingWithAssistant(_ messages: [SFTMessage]) -> [SFTMessage] {
        guard let last = messages.lastIndex(where: { $0.role == "assistant" }) else { return messages }
        return Array(messages[...last])
    }

    /// ceil(UTF-8 bytes / 4) of all the messages' contents, separate reasoning and tool calls.
    public static func estimatedTokens(_ messages: [SFTMessage]) -> Int {
        SFTSampling.estimatedTokens(bytes: messages.reduce(0) { $0 + $1.utf8Count })
    }

    // MARK: - OpenAI

    /// The opening messages, then per step the response as produced and the observation as recorded.
    static func openAIMessages(_ trajectory: Trajectory) -> [SFTMessage] {
        var messages = trajectory.header.messages.map(SFTMessage.init)
        for step in trajectory.steps {
            let response = step.response
            messages.append(SFTMessage(
                role: "assistant", content: response.content,
                toolCalls: response.toolCalls.isEmpty ? nil : response.toolCalls.map { .init(id: $0.id, name: $0.name, arguments: $0.arguments) },
                reasoningContent: response.reasoning))
            messages += step.observation.map(SFTMessage.init)
        }
        return messages
    }

    // MARK: - CWM

    static func cwmMessages(_ trajectory: Trajectory) -> [SFTMessage] {
        let header = trajectory.header
        let ranProtocol = header.configuration.protocol
        let cwm = CWMProtocol()
        var messages: [SFTMessage] = header.messages.map { message in
            // The system prompt must describe the protocol the row is written in.
            guard ranProtocol != cwm.name, message.role == .system else { return SFTMessage(message) }
            return SFTMessage(role: "system", content: cwmSystemPrompt(header))
        }
        for (step, estimated) in zip(trajectory.steps, budgets(trajectory)) {
            // Steps record the budget they showed; older trajectories get it recomputed.
            let budget = step.budget.map { (remainingTurns: $0.remainingTurns, remainingTokens: $0.remainingTokens) } ?? estimated
            guard let action = step.action else {
                // No action and no format error: the final reply that ends a CWM-rule episode.
                messages += step.formatError == nil
                    ? [SFTMessage(role: "assistant", content: cwmUnparsedContent(step, ranProtocol: ranProtocol))]
                    : cwmFormatError(step, ranProtocol: ranProtocol)
                continue
            }
            let call = cwm.render(action, callID: "").content
            let reasoning = step.reasoning.flatMap { $0.isEmpty ? nil : $0 }
            messages.append(SFTMessage(role: "assistant", content: reasoning.map { "\($0)\n</think>\n\(call)" } ?? call))
            let content: String
            if ranProtocol == cwm.name, let recorded = step.observation.first {
                content = recorded.content
            } else {
                // The recorded body; trajectories from before it was recorded have it taken
                // back out of the observation text, or rebuilt from the command's result.
                let body = step.observationBody ?? recordedBody(step, ranProtocol: ranProtocol)
                    ?? rebuiltBody(step, observationCharacters: header.configuration.observationCharacters)
                content = "<output>\n\(body)\n</output>\n\n<budget>\n* Remaining turns: \(budget.remainingTurns)\n* Remaining tokens: \(budget.remainingTokens)\n</budget>"
            }
            messages.append(SFTMessage(role: "tool: \(action.toolName)", content: content))
        }
        return messages
    }

    /// A turn that could not be parsed, kept as it happened: the raw response and the feedback.
    static func cwmFormatError(_ step: TrajectoryStep, ranProtocol: ProtocolName) -> [SFTMessage] {
        let reply = SFTMessage(role: "assistant", content: cwmUnparsedContent(step, ranProtocol: ranProtocol))
        let cwm = CWMProtocol()
        if ranProtocol == cwm.name {
            return [reply] + step.observation.map { SFTMessage(role: $0.role.rawValue, content: $0.content) }
        }
        let feedback = Templates.render(Templates.builtIn("format_error"),
                                        ["error": step.formatError ?? "the response could not be used", "format_reminder": cwm.formatReminder])
        return [reply, SFTMessage(role: "user", content: feedback)]
    }

    /// A response that parsed to no action, in CWM's text: a cwm run's raw content; otherwise
    /// native tool calls written as CWM tags after the reasoning, and plain text as it was.
    static func cwmUnparsedContent(_ step: TrajectoryStep, ranProtocol: ProtocolName) -> String {
        let response = step.response
        if ranProtocol == CWMProtocol().name { return response.content }
        let separate = step.reasoning.flatMap { $0.isEmpty ? nil : $0 }
        return response.toolCalls.isEmpty
            ? (response.reasoning.map { "\($0)\n</think>\n" } ?? "") + response.content
            : (separate.map { "\($0)\n</think>\n" } ?? "") + response.toolCalls.map { "<tool: \($0.name)>\n\($0.arguments)\n</tool>" }.joined(separator: "\n")
    }

    /// CWM's built-in system prompt with the values the episode used.
    static func cwmSystemPrompt(_ header: TrajectoryHeader) -> String {
        let limits = header.configuration.limits
        return Templates.render(Templates.builtIn("cwm.system"), [
            "problem_statement": header.task.problemStatement,
            "hints": header.task.hintsText.map { $0.isEmpty ? "" : "\nHints:\n\($0)\n" } ?? "",
            "repo_path": header.checkout,
            "command_timeout": String(Int(limits.commandTimeoutSeconds)),
            "max_steps": String(limits.maxSteps),
            "submit_rule": header.configuration.submitRule,
        ])
    }

    /// The budget shown after each step, computed as the agent loop does: turns left, and the
    /// context window minus the latest turn's prompt and completion (estimated at four bytes a
    /// token from the conversation so far when the server reported no usage).
    static func budgets(_ trajectory: Trajectory) -> [(remainingTurns: Int, remainingTokens: Int)] {
        let limits = trajectory.header.configuration.limits
        var conversationEstimate = trajectory.header.messages.reduce(0) { $0 + $1.content.utf8.count / 4 + 4 }
        return trajectory.steps.map { step in
            let response = step.response
            let prompt = response.promptTokens ?? conversationEstimate
            let completion = response.completionTokens ?? max(1, response.content.utf8.count / 4)
            conversationEstimate += response.content.utf8.count / 4 + 4
            conversationEstimate += step.observation.reduce(0) { $0 + $1.content.utf8.count / 4 + 4 }
            return (remainingTurns: max(0, limits.maxSteps - step.index),
                    remainingTokens: max(0, limits.maxContextTokens - prompt - completion))
        }
    }

    /// The observation's body with the recorded protocol's budget line taken off, when it has one.
    static func recordedBody(_ step: TrajectoryStep, ranProtocol: ProtocolName) -> String? {
        guard step.observation.count == 1, let text = step.observation.first?.content else { return nil }
        let marker = switch ranProtocol {
        case .tools: "\n\nRemaining turns: "
        case .fenced: "\n\nRemaining steps: "
        case .cwm: ""
        }
        guard !marker.isEmpty, let range = text.range(of: marker, options: .backwards) else { return nil }
        let tail = text[range.upperBound...]
        // The tail must be exactly "N. Remaining tokens: M."
        let pieces = tail.components(separatedBy: ". Remaining tokens: ")
        guard pieces.count == 2, Int(pieces[0]) != nil, pieces[1].hasSuffix("."), Int(pieces[1].dropLast()) != nil else { return nil }
        return String(text[..<range.lowerBound])
    }

    /// The body rebuilt from the step's record, as the agent loop renders it; used only when the
    /// recorded observation does not end in the protocol's budget line.
    static func rebuiltBody(_ step: TrajectoryStep, observationCharacters: Int) -> String {
        guard let result = step.command else { return step.toolOutput ?? "(no output)" }
        return ObservationBody.render(result, observationCharacters: observationCharacters)
    }
}
