import Foundation
import WardenCore

/// What one model response amounted to.
public enum ParsedTurn: Sendable, Hashable {
    case action(AgentAction, reasoning: String?, callID: String?)
    case formatError(String, reasoning: String?, callIDs: [String])

    public var reasoning: String? {
        switch self {
        case let .action(_, reasoning, _), let .formatError(_, reasoning, _): reasoning
        }
    }
}

/// The budget shown to the model after each observation.
public struct Budget: Sendable, Hashable, Codable {
    public var remainingTurns: Int
    public var remainingTokens: Int
}

/// How a model writes actions and reads observations: CWM's text tags, OpenAI function
/// calling, or one fenced bash block per turn.
public protocol ActionProtocol: Sendable {
    var name: ProtocolName { get }
    /// Functions offered through native function calling (empty for text protocols).
    var tools: [ToolSchema] { get }
    /// The built-in system prompt template.
    var systemTemplate: String { get }
    /// One line reminding the model of the format, for format-error feedback.
    var formatReminder: String { get }
    /// The built-in templates for format errors and for the task, by name in `Templates/`.
    var formatErrorTemplateName: String { get }
    var instanceTemplateName: String { get }
    func parse(_ response: ModelResponse) -> ParsedTurn
    /// The conversation message recording the model's response.
    func assistantMessage(_ response: ModelResponse) -> ChatMessage
    /// Wraps an observation body (output, exit code) with the budget, as the model sees it.
    func observation(_ body: String, budget: Budget, turn: ParsedTurn) -> [ChatMessage]
    /// Feedback for a response that could not be used.
    func formatFeedback(_ text: String, turn: ParsedTurn) -> [ChatMessage]
    /// The response that would express `action` in this protocol (the oracle writes these).
    func render(_ action: AgentAction, callID: String) -> ModelResponse
}

extension ActionProtocol {
    public var formatErrorTemplateName: String { "format_error" }
    public var instanceTemplateName: String { "instance" }

    public func assistantMessage(_ response: ModelResponse) -> ChatMessage {
        ChatMessage(role: .assistant, content: response.content, toolCalls: response.toolCalls.isEmpty ? nil : response.toolCalls)
    }

    public func formatFeedback(_ text: String, turn: ParsedTurn) -> [ChatMessage] {
        [ChatMessage(role: .user, content: text)]
    }
}

/// The action protocols by name, as configurations, trajectories and the command line write them.
public enum ProtocolName: String, Sendable, Codable, Hashable, CaseIterable, CustomStringConvertible {
    /// CWM's `<tool: NAME>` text tags.
    case cwm
    /// OpenAI function calling.
    case tools
    /// One fenced bash block per turn (mini-swe-agent).
    case fenced

    public var description: String { rawValue }

    public var handler: any ActionProtocol {
        switch self {
        case .cwm: CWMProtocol()
        case .tools: ToolsProtocol()
        case .fenced: FencedProtocol()
        }
    }
}

// MARK: - Shared argument formats

enum ToolArguments {
    static let searchMarker = "<<<<<<< SEARCH"
    static let dividerMarker = "======="
    static let replaceMarker = ">>>>>>> REPLACE"

    /// `edit`: the path on the first line, then one SEARCH/REPLACE block.
    static func edit(_ text: String) -> Result<AgentAction, FormatProblem> {
        let (path, body) = splitFirstLine(text)
        guard !path.isEmpty else { return .failure(FormatProblem("edit needs the file path on its first line")) }
        let lines = body.components(separatedBy: "\n")
        guard let search = lines.firstIndex(of: searchMarker) else {
            return .failure(FormatProblem("edit needs a block starting with a line `\(searchMarker)`"))
        }
        guard let divider = lines[(search + 1)...].firstIndex(of: dividerMarker) else {
            return .failure(FormatProblem("edit's block needs a `\(dividerMarker)` line between the search and the replacement text"))
        }
        guard let replace = lines[(divider + 1)...].firstIndex(of: replaceMarker) else {
            return .failure(FormatProblem("edit's block must end with a line `\(replaceMarker)`"))
        }
        if lines[(replace + 1)...].contains(where: { $0 == searchMarker }) {
            return .failure(FormatProblem("edit takes exactly one SEARCH/REPLACE block; make one edit per call"))
        }
        let searchText = lines[(search + 1)..<divider].joined(separator: "\n")
        let replaceText = lines[(divider + 1)..<replace].joined(separator: "\n")
        guard !searchText.isEmpty else { return .failure(FormatProblem("edit's search text is empty; use create for new files")) }
        return .success(.edit(path: path, search: searchText, replace: replaceText))
    }

    static func renderEdit(path: String, search: String, replace: String) -> String {
        "\(path)\n\(searchMarker)\n\(search)\n\(dividerMarker)\n\(replace)\n\(replaceMarker)"
    }

    /// `create`: the path on the first line, the content after it.
    static func create(_ text: String) -> Result<AgentAction, FormatProblem> {
        let (path, body) = splitFirstLine(text)
        guard !path.isEmpty else { return .failure(FormatProblem("create needs the file path on its first line")) }
        return .success(.create(path: path, content: body.isEmpty ? "" : body + "\n"))
    }

    static func splitFirstLine(_ text: String) -> (String, String) {
        guard let newline = text.firstIndex(of: "\n") else { return (text.trimmingCharacters(in: .whitespaces), "") }
        return (String(text[..<newline]).trimmingCharacters(in: .whitespaces), String(text[text.index(after: newline)...]))
    }
}

struct FormatProblem: Error, Hashable {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Splits off reasoning that ends at a single `</think>`.
func separateReasoning(_ content: String) -> Result<(reasoning: String?, rest: String), FormatProblem> {
    let parts = content.components(separatedBy: "</think>")
    switch parts.count {
    case 1: return .success((nil, content))
    case 2: return .success((parts[0].replacingOccurrences(of: "<think>", with: "").trimmingCharacters(in: .whitespacesAndNewlines), parts[1]))
    default: return .failure(FormatProblem("the response has \(parts.count - 1) `</think>` tags; end your reasoning with exactly one"))
    }
}

// MARK: - CWM

/// CWM's native protocol: exactly one `<tool: NAME>\nARGS\n</tool>` per turn.
public struct CWMProtocol: ActionProtocol {
    public let name = ProtocolName.cwm
    public let tools: [ToolSchema] = []
    public init() {}

    public var systemTemplate: String { Templates.builtIn("cwm.system") }
    public var formatReminder: String { "Call exactly one tool per turn, as <tool: NAME>, then its arguments on the next lines, then </tool> on its own line." }
    /// CWM feeds a format error back as `ExceptionType: message` and nothing else.
    public var formatErrorTemplateName: String { "cwm.format_error" }
    public var instanceTemplateName: String { "cwm.instance" }


    /// Parses as CWM's environment does (`parse_tool_calls`, with its error messages): at most
    /// one call, as many `<tool:` and `</tool>` tags as calls, at least one call, non-empty
    /// arguments, a known tool. Two extensions: reasoning is optional (zero or one
    /// `</think>`), and `submit` takes empty arguments to submit the repository's diff.
    public func parse(_ response: ModelResponse) -> ParsedTurn {
        let separated: (reasoning: String?, rest: String)
        switch separateReasoning(response.content) {
        case let .success(value): separated = value
        case .failure:
            let count = response.content.components(separatedBy: "</think>").count - 1
            return .formatError("FormatError: Expected exactly one thinking end token, got \(count)", reasoning: nil, callIDs: [])
        }
        let reasoning = separated.reasoning ?? response.reasoning
        let text = separated.rest
        let matches = Self.toolCalls(in: text)
        func failure(_ message: String) -> ParsedTurn { .formatError("FormatError: " + message, reasoning: reasoning, callIDs: []) }
        if matches.count > 1 {
            return failure("Expected one tool call, but found \(matches.count): \(matches.map { $0.name }.joined(separator: ", ")). "
                + "Ensure only one <tool:...></tool> block is present in the response.")
        }
        let opening = text.components(separatedBy: "<tool:").count - 1
        let closing = text.components(separatedBy: "</tool>").count - 1
        if opening != matches.count || closing != matches.count {
            return failure("Mismatch in tool tag counts: found \(matches.count) tool calls via regex, but counted \(opening) opening tags and \(closing) closing tags.")
        }
        guard let match = matches.first else { return failure("No tool calls found") }
        let tool = match.name
        let arguments = match.arguments
        let empty = arguments.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        if empty && tool != "submit" {
            return failure("Tool '\(tool)' requires non-empty arguments, but received empty or whitespace-only input.")
        }
        let action: Result<AgentAction, FormatProblem>
        switch tool {
        case "bash": action = .success(.bash(command: arguments))
        case "edit": action = ToolArguments.edit(arguments).mapError { FormatProblem("FormatError: " + $0.message) }
        case "create": action = ToolArguments.create(arguments).mapError { FormatProblem("FormatError: " + $0.message) }
        case "submit": action = .success(.submit(path: empty ? nil : arguments.trimmingCharacters(in: .whitespacesAndNewlines)))
        default: action = .failure(FormatProblem("NoSuchToolError: Tool '\(tool)' not found."))
        }
        switch action {
        case let .success(action): return .action(action, reasoning: reasoning, callID: nil)
        case let .failure(problem): return .formatError(problem.message, reasoning: reasoning, callIDs: [])
        }
    }

    /// The matches of the reference regex `<tool:\s([a-zA-Z_]+)>\n(.*?)\n</tool>` (DOTALL),
    /// found by hand: Swift's Regex costs milliseconds per response on Linux.
    static func toolCalls(in text: String) -> [(name: String, arguments: String, range: Range<String.Index>)] {
        var calls: [(String, String, Range<String.Index>)] = []
        var searchStart = text.startIndex
        while let open = text.range(of: "<tool:", range: searchStart..<text.endIndex) {
            var cursor = open.upperBound
            guard cursor < text.endIndex, text[cursor].isWhitespace else { searchStart = open.upperBound; continue }
            cursor = text.index(after: cursor)
            let nameStart = cursor
            while cursor < text.endIndex, text[cursor].isASCII, text[cursor].isLetter || text[cursor] == "_" {
                cursor = text.index(after: cursor)
            }
            guard cursor > nameStart, text[cursor...].hasPrefix(">\n") else { searchStart = open.upperBound; continue }
            let argumentsStart = text.index(cursor, offsetBy: 2)
            // Warden's extension: `<tool: submit>\n</tool>`, a call with no arguments at all.
            if text[argumentsStart...].hasPrefix("</tool>") {
                let end = text.index(argumentsStart, offsetBy: 7)
                calls.append((String(text[nameStart..<cursor]), "", open.lowerBound..<end))
                searchStart = end
                continue
            }
            guard let close = text.range(of: "\n</tool>", range: argumentsStart..<text.endIndex) else {
                searchStart = open.upperBound
                continue
            }
            calls.append((String(text[nameStart..<cursor]), String(text[argumentsStart..<close.lowerBound]), open.lowerBound..<close.upperBound))
            searchStart = close.upperBound
        }
        return calls
    }

    public func observation(_ body: String, budget: Budget, turn: ParsedTurn) -> [ChatMessage] {
        let text = "<output>\n\(body)\n</output>\n\n<budget>\n* Remaining turns: \(budget.remainingTurns)\n* Remaining tokens: \(budget.remainingTokens)\n</budget>"
        var toolName = "bash"
        if case let .action(action, _, _) = turn { toolName = action.toolName }
        return [ChatMessage(role: .user, content: text, name: "tool: \(toolName)")]
    }

    public func render(_ action: AgentAction, callID: String) -> ModelResponse {
        let arguments: String
        switch action {
        case let .bash(command): arguments = command
        case let .edit(path, search, replace): arguments = ToolArguments.renderEdit(path: path, search: search, replace: replace)
        case let .create(path, content): arguments = path + "\n" + (content.hasSuffix("\n") ? String(content.dropLast()) : content)
        case let .submit(path): arguments = path ?? ""
        }
        return ModelResponse(content: "<tool: \(action.toolName)>\n\(arguments)\n</tool>", finishReason: "stop")
    }
}

// MARK: - Fenced

/// mini-swe-agent's protocol: exactly one fenced bash block per turn; `submit` ends.
public struct FencedProtocol: ActionProtocol {
    public let name = ProtocolName.fenced
    public let tools: [ToolSchema] = []
    public init() {}

    public var systemTemplate: String { Templates.builtIn("fenced.system") }
    public var formatReminder: String { "Reply with exactly one ```bash block holding one command; `submit` when you are done." }

    public func parse(_ response: ModelResponse) -> ParsedTurn {
        let text = response.content
        let matches = Self.blocks(in: text)
        let reasoning = response.reasoning ?? matches.first.map {
            String(text[..<$0.range.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard matches.count == 1, let match = matches.first else {
            let message = matches.isEmpty ? "the response has no ```bash block" : "the response has \(matches.count) code blocks; use exactly one"
            return .formatError(message, reasoning: response.reasoning ?? text, callIDs: [])
        }
        let command = match.body
        let trimmed = command.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed == "submit" { return .action(.submit(path: nil), reasoning: reasoning, callID: nil) }
        if trimmed.hasPrefix("submit "), !trimmed.contains("\n") {
            return .action(.submit(path: String(trimmed.dropFirst(7)).trimmingCharacters(in: .whitespaces)), reasoning: reasoning, callID: nil)
        }
        return .action(.bash(command: command), reasoning: reasoning, callID: nil)
    }

    /// Fenced blocks: ``` with an optional bash/sh tag, a newline, the body, and closing ```.
    static func blocks(in text: String) -> [(body: String, range: Range<String.Index>)] {
        var blocks: [(String, Range<String.Index>)] = []
        var searchStart = text.startIndex
        while let open = text.range(of: "```", range: searchStart..<text.endIndex) {
            var cursor = open.upperBound
            for tag in ["bash", "sh"] where text[cursor...].hasPrefix(tag) {
                cursor = text.index(cursor, offsetBy: tag.count)
                break
            }
            while cursor < text.endIndex, text[cursor] == " " || text[cursor] == "\t" { cursor = text.index(after: cursor) }
            guard cursor < text.endIndex, text[cursor] == "\n" else { searchStart = open.upperBound; continue }
            let bodyStart = text.index(after: cursor)
            guard let close = text.range(of: "```", range: bodyStart..<text.endIndex) else { break }
            var bodyEnd = close.lowerBound
            if bodyEnd > bodyStart, text[text.index(before: bodyEnd)] == "\n" { bodyEnd = text.index(before: bodyEnd) }
            blocks.append((String(text[bodyStart..<bodyEnd]), open.lowerBound..<close.upperBound))
            searchStart = close.upperBound
        }
        return blocks
    }

    public func observation(_ body: String, budget: Budget, turn: ParsedTurn) -> [ChatMessage] {
        [ChatMessage(role: .user, content: "\(body)\n\nRemaining steps: \(budget.remainingTurns). Remaining tokens: \(budget.remainingTokens).")]
    }

    public func render(_ action: AgentAction, callID: String) -> ModelResponse {
        let command: String
        switch action {
        case let .bash(text): command = text
        case let .submit(path): command = path.map { "submit \($0)" } ?? "submit"
        case let .create(path, content):
            command = "cat > \(path) <<'WARDEN_EOF'\n\(content.hasSuffix("\n") ? String(content.dropLast()) : content)\nWARDEN_EOF"
        case .edit:
            command = "echo 'edit is not available in the fenced protocol' >&2; false"
        }
        return ModelResponse(content: "```bash\n\(command)\n```", finishReason: "stop")
    }
}

// MARK: - Function calling

/// OpenAI function calling with JSON schemas for bash, edit, create and submit.
public struct ToolsProtocol: ActionProtocol {
    public let name = ProtocolName.tools
    public init() {}

    public var systemTemplate: String { Templates.builtIn("tools.system") }
    public var formatReminder: String { "Call exactly one function per turn: bash, edit, create or submit." }

    public var tools: [ToolSchema] {
        func schema(_ properties: [String: String], required: [String]) -> JSONValue {
            .object([
                "type": .string("object"),
                "properties": .object(properties.mapValues { .object(["type": .string("string"), "description": .string($0)]) }),
                "required": .array(required.map { .string($0) }),
            ])
        }
        return [
            ToolSchema(name: "bash", description: "Run a command in a persistent bash session (no stdin, no network).",
                       parameters: schema(["command": "The command to run."], required: ["command"])),
            ToolSchema(name: "edit", description: "Replace text that occurs exactly once in a file.",
                       parameters: schema(["path": "The file.", "search": "Existing text; must occur exactly once.", "replace": "The replacement."],
                                          required: ["path", "search", "replace"])),
            ToolSchema(name: "create", description: "Create a new file; fails if it exists.",
                       parameters: schema(["path": "The new file.", "content": "Its content."], required: ["path", "content"])),
            ToolSchema(name: "submit", description: "Submit the repository's diff (or the patch file at path) and end the episode.",
                       parameters: schema(["path": "Optional patch file to submit instead of the diff."], required: [])),
        ]
    }

    public func parse(_ response: ModelResponse) -> ParsedTurn {
        let ids = response.toolCalls.map(\.id)
        let reasoning = response.reasoning ?? (response.content.isEmpty ? nil : response.content)
        guard response.toolCalls.count == 1, let call = response.toolCalls.first else {
            let message = response.toolCalls.isEmpty ? "the response calls no function" : "the response calls \(response.toolCalls.count) functions; call exactly one per turn"
            return .formatError(message, reasoning: reasoning, callIDs: ids)
        }
        guard let data = call.arguments.data(using: .utf8),
              let decoded = try? JSONDecoder().decode(JSONValue.self, from: data.isEmpty ? Data("{}".utf8) : data),
              case let .object(arguments) = decoded else {
            return .formatError("the arguments of \(call.name) are not a JSON object", reasoning: reasoning, callIDs: ids)
        }
        func string(_ key: String) -> String? {
            if case let .string(value) = arguments[key] { return value }
            return nil
        }
        func missing(_ key: String) -> ParsedTurn {
            .formatError("\(call.name) needs a string argument \"\(key)\"", reasoning: reasoning, callIDs: ids)
        }
        switch call.name {
        case "bash":
            guard let command = string("command") else { return missing("command") }
            return .action(.bash(command: command), reasoning: reasoning, callID: call.id)
        case "edit":
            guard let path = string("path") else { return missing("path") }
            guard let search = string("search") else { return missing("search") }
            guard let replace = string("replace") else { return missing("replace") }
            return .action(.edit(path: path, search: search, replace: replace), reasoning: reasoning, callID: call.id)
        case "create":
            guard let path = string("path") else { return missing("path") }
            guard let content = string("content") else { return missing("content") }
            return .action(.create(path: path, content: content), reasoning: reasoning, callID: call.id)
        case "submit":
            let path = string("path").map { $0.trimmingCharacters(in: .whitespaces) }
            return .action(.submit(path: (path?.isEmpty ?? true) ? nil : path), reasoning: reasoning, callID: call.id)
        default:
            return .formatError("unknown function \"\(call.name)\"; the functions are bash, edit, create and submit", reasoning: reasoning, callIDs: ids)
        }
    }

    public func observation(_ body: String, budget: Budget, turn: ParsedTurn) -> [ChatMessage] {
        let text = "\(body)\n\nRemaining turns: \(budget.remainingTurns). Remaining tokens: \(budget.remainingTokens)."
        if case let .action(action, _, callID?) = turn {
            return [ChatMessage(role: .tool, content: text, toolCallID: callID, name: action.toolName)]
        }
        return [ChatMessage(role: .user, content: text)]
    }

    public func formatFeedback(_ text: String, turn: ParsedTurn) -> [ChatMessage] {
        // Every tool call must be answered before the conversation can go on.
        if case let .formatError(_, _, ids) = turn, !ids.isEmpty {
            return ids.map { ChatMessage(role: .tool, content: text, toolCallID: $0) }
        }
        return [ChatMessage(role: .user, content: text)]
    }

    public func render(_ action: AgentAction, callID: String) -> ModelResponse {
        var arguments: [String: String] = [:]
        switch action {
        case let .bash(command): arguments["command"] = command
        case let .edit(path, search, replace): arguments = ["path": path, "search": search, "replace": replace]
        case let .create(path, content): arguments = ["path": path, "content": content]
        case let .submit(path): if let path { arguments["path"] = path }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = (try? encoder.encode(arguments)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ModelResponse(content: "", toolCalls: [ToolCall(id: callID, name: action.toolName, arguments: json)], finishReason: "tool_calls")
    }
}
