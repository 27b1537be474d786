import Foundation
import WardenCore

/// How the issue text was cut to fit the prompt budget; in the trajectory's header when it was.
public struct PromptTruncation: Sendable, Codable, Hashable {
    /// The budget, in estimated tokens, of the task message.
    public var budgetTokens: Int
    /// The task message's estimated tokens with the whole issue text, and as sent.
    public var originalTokens: Int
    public var keptTokens: Int
    /// UTF-8 bytes of the issue text, whole and kept (the marker not counted).
    public var originalBytes: Int
    public var keptBytes: Int
    /// What stands in for the cut text, before the kept end of the issue.
    public var marker: String
}

/// The conversation's opening: the system prompt and the task message rendered from the
/// templates, with the issue text cut to the prompt budget, and the checked format-error template.
struct OpeningPrompt {
    /// The values the system and instance templates may use.
    static let keys: Set<String> = ["problem_statement", "hints", "repo_path", "command_timeout", "max_steps", "submit_rule"]
    /// The values the format-error template may use.
    static let formatErrorKeys: Set<String> = ["error", "format_reminder"]
    /// CWM's mark of a cut (`DialogEnv`'s `abbrev_str`), put where the cut text was.
    static let truncationMarker = "[...]"

    var messages: [ChatMessage]
    var truncation: PromptTruncation?
    var formatErrorTemplate: String

    /// Loads and checks the three templates (a placeholder naming no value is an error naming
    /// the template and line) and renders the opening messages.
    init(task: TaskInstance, checkout: String, configuration: AgentConfiguration, protocol handler: any ActionProtocol) throws {
        let limits = configuration.limits
        let values = [
            "problem_statement": task.problemStatement,
            "hints": task.hintsText.map { $0.isEmpty ? "" : "\nHints:\n\($0)\n" } ?? "",
            "repo_path": checkout,
            "command_timeout": String(Int(limits.commandTimeoutSeconds)),
            "max_steps": String(limits.maxSteps),
            "submit_rule": configuration.submitRule,
        ]
        let templates = configuration.templates
        let system = try Templates.load(templates.system, builtIn: "\(handler.name).system", keys: Self.keys)
        let instance = try Templates.load(templates.instance, builtIn: handler.instanceTemplateName, keys: Self.keys)
        formatErrorTemplate = try Templates.load(templates.formatError, builtIn: handler.formatErrorTemplateName, keys: Self.formatErrorKeys)
        let (task, truncation) = Self.fit(instance, values, budget: configuration.promptBudget)
        messages = [ChatMessage(role: .system, content: Templates.render(system, values)), ChatMessage(role: .user, content: task)]
        self.truncation = truncation
    }

    /// The instance template rendered so that the task message's estimate (`estimateTokens`,
    /// four bytes a token, as the loop counts) is within `budget`: as CWM does, the issue text
    /// loses its beginning and the kept end follows the marker. CWM cuts the whole message body
    /// by its tokenizer's tokens; Warden cuts only the issue text, at a character boundary, so
    /// the instructions around it stay whole. When the rest of the message alone is over the
    /// budget, the issue text is the marker alone and the message goes over.
    static func fit(_ template: String, _ values: [String: String], budget: Int?) -> (String, PromptTruncation?) {
        let whole = Templates.render(template, values)
        let problem = values["problem_statement"] ?? ""
        let originalTokens = estimateTokens([ChatMessage(role: .user, content: whole)])
        let uses = Templates.placeholders(in: template).filter { $0.name == "problem_statement" }.count
        guard let budget, originalTokens > budget, uses > 0, !problem.isEmpty else { return (whole, nil) }

        // The most bytes whose estimate (bytes / 4 + 4) is within the budget.
        let allowedBytes = max(0, (budget - 4) * 4 + 3)
        let otherBytes = whole.utf8.count - uses * problem.utf8.count
        let keepBytes = max(0, (allowedBytes - otherBytes) / uses - truncationMarker.utf8.count)
        var start = problem.endIndex
        var kept = 0
        while start > problem.startIndex {
            let previous = problem.index(before: start)
            let size = problem.utf8.distance(from: previous, to: start)
            if kept + size > keepBytes { break }
            kept += size
            start = previous
        }
        var cut = values
        cut["problem_statement"] = truncationMarker + problem[start...]
        let text = Templates.render(template, cut)
        return (text, PromptTruncation(
            budgetTokens: budget, originalTokens: originalTokens, keptTokens: estimateTokens([ChatMessage(role: .user, content: text)]),
            originalBytes: problem.utf8.count, keptBytes: kept, marker: truncationMarker))
    }
}
