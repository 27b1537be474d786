import Foundation
import WardenCore

/// Everything that shapes an episode besides the task and the model. Saved with every
/// trajectory, so a run can be reproduced.
public struct AgentConfiguration: Sendable, Codable, Hashable {
    public struct Limits: Sendable, Codable, Hashable {
        /// Model turns, format errors included.
        public var maxSteps: Int
        /// The context window: prompt plus completion tokens of the latest turn.
        public var maxContextTokens: Int
        /// Prompt and completion tokens summed over the episode (0 = no cap).
        public var maxTotalTokens: Int
        /// Tokens one response may have (sent as max_tokens).
        public var maxResponseTokens: Int
        /// Wall-clock seconds for the whole episode.
        public var wallTimeSeconds: Double
        /// Format errors in a row that end the episode.
        public var maxConsecutiveFormatErrors: Int
        /// Seconds one command may run.
        public var commandTimeoutSeconds: Double

        public init(maxSteps: Int = 128, maxContextTokens: Int = 131_072, maxTotalTokens: Int = 0,
                    maxResponseTokens: Int = 65_536, wallTimeSeconds: Double = 3600,
                    maxConsecutiveFormatErrors: Int = 3, commandTimeoutSeconds: Double = 120) {
            self.maxSteps = maxSteps
            self.maxContextTokens = maxContextTokens
            self.maxTotalTokens = maxTotalTokens
            self.maxResponseTokens = maxResponseTokens
            self.wallTimeSeconds = wallTimeSeconds
            self.maxConsecutiveFormatErrors = maxConsecutiveFormatErrors
            self.commandTimeoutSeconds = commandTimeoutSeconds
        }
    }

    /// Template files that replace the protocol's built-in prompts.
    public struct Templates: Sendable, Codable, Hashable {
        public var system: String?
        public var instance: String?
        public var formatError: String?

        public init(system: String? = nil, instance: String? = nil, formatError: String? = nil) {
            self.system = system
            self.instance = instance
            self.formatError = formatError
        }
    }

    /// `cwm`, `tools` or `fenced`.
    public var `protocol`: ProtocolName
    public var limits: Limits
    /// Characters of a command's output the model sees: the first and the last half of this.
    public var observationCharacters: Int
    /// Whether a successful `submit` ends the episode. False is CWM's rule: the model may submit
    /// again, and after at least one successful submission a reply without a tool call (its
    /// final response) ends the episode, `submitted` with the last submission.
    public var submitEndsEpisode: Bool
    public var templates: Templates
    /// The sandbox profile for the agent's commands.
    public var sandboxProfile: String
    /// Estimated tokens the task message (the rendered instance template) may have; a longer
    /// issue text is cut from the left, as CWM does. Nil is the protocol's default
    /// (`defaultPromptBudget`), 0 is no budget.
    public var promptBudgetTokens: Int?

    public init(protocol: ProtocolName = .cwm, limits: Limits = Limits(), observationCharacters: Int = 10_000,
                submitEndsEpisode: Bool = true, templates: Templates = Templates(),
                sandboxProfile: String = "agent", promptBudgetTokens: Int? = nil) {
        self.protocol = `protocol`
        self.limits = limits
        self.observationCharacters = observationCharacters
        self.submitEndsEpisode = submitEndsEpisode
        self.templates = templates
        self.sandboxProfile = sandboxProfile
        self.promptBudgetTokens = promptBudgetTokens
    }

    /// The prompt budget a protocol has when none is configured: CWM's `max_prompt_len`
    /// (8,192 tokens) for `cwm`; none for `tools` and `fenced`, whose reference harnesses
    /// (mini-swe-agent, SWE-agent) send the issue whole, so their results stay comparable.
    public static func defaultPromptBudget(protocol name: ProtocolName) -> Int? {
        name == .cwm ? 8_192 : nil
    }

    /// The prompt budget in effect: the configured one, else the protocol's; nil for none.
    public var promptBudget: Int? {
        guard let promptBudgetTokens else { return Self.defaultPromptBudget(protocol: `protocol`) }
        return promptBudgetTokens > 0 ? promptBudgetTokens : nil
    }

    /// What ends the episode, in the prompt's words (the `{{submit_rule}}` template value).
    public var submitRule: String {
        submitEndsEpisode
            ? "A successful submission ends the session."
            : "You can refine and submit again; after at least one successful submission, a response without a tool call (your final summary) ends the session."
    }

    /// Reads a JSON configuration file; absent fields keep their defaults, unknown ones are errors.
    public static func load(_ url: URL) throws -> AgentConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WardenError("config.read", "cannot read the configuration: \(error.localizedDescription)", context: url.path)
        }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw WardenError("config.invalid", "not valid JSON: \(error.localizedDescription)", context: url.path)
        }
        var configuration = AgentConfiguration()
        guard case let .object(root) = value else { throw WardenError("config.invalid", "must be a JSON object", context: url.path) }
        func fail(_ field: String, _ message: String) -> WardenError {
            WardenError("config.invalid", message, context: "\(url.path): \(field)")
        }
        func number(_ value: JSONValue, _ field: String) throws -> Double {
            guard case let .number(number) = value, number >= 0 else { throw fail(field, "must be a non-negative number") }
            return number
        }
        func string(_ value: JSONValue, _ field: String) throws -> String {
            guard case let .string(text) = value else { throw fail(field, "must be a string") }
            return text
        }
        let base = url.deletingLastPathComponent()
        for (key, value) in root {
            switch key {
            case "protocol":
                let name = try string(value, key)
                guard let known = ProtocolName(rawValue: name) else { throw fail(key, "must be cwm, tools or fenced, not \(name)") }
                configuration.protocol = known
            case "observation_characters": configuration.observationCharacters = Int(try number(value, key))
            case "sandbox_profile": configuration.sandboxProfile = try string(value, key)
            case "prompt_budget_tokens": configuration.promptBudgetTokens = Int(try number(value, key))
            case "submit_ends_episode":
                guard case let .bool(flag) = value else { throw fail(key, "must be true or false") }
                configuration.submitEndsEpisode = flag
            case "limits":
                guard case let .object(limits) = value else { throw fail(key, "must be an object") }
                for (name, item) in limits {
                    let field = "limits.\(name)"
                    switch name {
                    case "max_steps": configuration.limits.maxSteps = Int(try number(item, field))
                    case "max_context_tokens": configuration.limits.maxContextTokens = Int(try number(item, field))
                    case "max_total_tokens": configuration.limits.maxTotalTokens = Int(try number(item, field))
                    case "max_response_tokens": configuration.limits.maxResponseTokens = Int(try number(item, field))
                    case "wall_time_seconds": configuration.limits.wallTimeSeconds = try number(item, field)
                    case "max_consecutive_format_errors": configuration.limits.maxConsecutiveFormatErrors = Int(try number(item, field))
                    case "command_timeout_seconds": configuration.limits.commandTimeoutSeconds = try number(item, field)
                    default: throw fail(field, "unknown field")
                    }
                }
            case "templates":
                guard case let .object(templates) = value else { throw fail(key, "must be an object") }
                for (name, item) in templates {
                    // Template paths are relative to the configuration file.
                    let path = try string(item, "templates.\(name)")
                    let resolved = path.hasPrefix("/") ? path : base.appendingPathComponent(path).path
                    switch name {
                    case "system": configuration.templates.system = resolved
                    case "instance": configuration.templates.instance = resolved
                    case "format_error": configuration.templates.formatError = resolved
                    default: throw fail("templates.\(name)", "unknown template; expected system, instance or format_error")
                    }
                }
            default:
                throw fail(key, "unknown field")
            }
        }
        return configuration
    }
}
