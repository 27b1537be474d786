import Foundation
import Scoring
import WardenCore

/// The first line of a trajectory file: what ran, where, with what.
public struct TrajectoryHeader: Sendable, Codable, Hashable {
    public var type = "header"
    public var schemaVersion = 1
    public var wardenVersion: String
    public var startedAt: String
    public var task: TaskInstance
    /// The repository the checkout was materialized from, and its base commit and tree.
    public var sourceRepository: String?
    /// Where the repository can be found again after the run's copies are gone (replay, fork).
    public var origin: TaskOrigin?
    /// The trajectory and step this episode was forked from.
    public var parent: EpisodeParent?
    public var baseCommit: String
    public var baseTree: String
    public var checkout: String
    public var sandboxProfile: String
    public var model: String
    public var configuration: AgentConfiguration
    /// The conversation's opening messages (system prompt and issue), as the model saw them.
    public var messages: [ChatMessage]
    public var tools: [ToolSchema]
    /// Set when the issue text was cut to fit the prompt budget (`messages` hold the cut text,
    /// `task` the whole one).
    public var promptTruncation: PromptTruncation?

    public init(wardenVersion: String, startedAt: String, task: TaskInstance, sourceRepository: String?, origin: TaskOrigin? = nil,
                parent: EpisodeParent? = nil, baseCommit: String,
                baseTree: String, checkout: String, sandboxProfile: String, model: String, configuration: AgentConfiguration,
                messages: [ChatMessage], tools: [ToolSchema], promptTruncation: PromptTruncation? = nil) {
        self.wardenVersion = wardenVersion
        self.startedAt = startedAt
        self.task = task
        self.sourceRepository = sourceRepository
        self.origin = origin
        self.parent = parent
        self.baseCommit = baseCommit
        self.baseTree = baseTree
        self.checkout = checkout
        self.sandboxProfile = sandboxProfile
        self.model = model
        self.configuration = configuration
        self.messages = messages
        self.tools = tools
        self.promptTruncation = promptTruncation
    }
}

/// One turn: the model's response, what it was parsed into, and what came of it.
public struct TrajectoryStep: Sendable, Codable, Hashable {
    public var type = "step"
    public var index: Int
    public var startedAt: String
    public var endedAt: String
    /// The raw model response and the call's metadata (latency, tokens, finish reason, model).
    public var response: ModelResponse
    /// Reasoning stripped before parsing (text before `</think>`, or the server's reasoning).
    public var reasoning: String?
    public var action: AgentAction?
    public var formatError: String?
    /// Set when a person reviewing with --confirm edited, skipped or quit at the model's action.
    public var review: ReviewOutcome?
    /// The messages added after the response, exactly as the model will see them.
    public var observation: [ChatMessage]
    /// What the observation was rendered from: the action's result before the protocol wrapped
    /// it, and the budget it showed. An export in another protocol renders from these.
    public var observationBody: String?
    public var budget: Budget?
    /// The command's result with its full output (capped high), for bash actions.
    public var command: CommandResult?
    /// What a non-bash tool reported (edit applied, file exists, submission read).
    public var toolOutput: String?
    public var exitCode: Int32?
    public var durationMs: Double
    public var cwd: String?
    /// The shell's exported variables after the step, when they differ from the previous step's
    /// (nil: unchanged, or no command ran). Fork starts its shell with them.
    public var exports: [String: String]?
    /// The patch, when this step was a successful submission.
    public var submission: String?
    /// Files this step changed, and the snapshot tree after it.
    public var changes: [FileChange]
    public var treeID: String?
    public var gitignoreChanged: Bool
    /// Why the checkout could not be scanned after this step (the agent was told); nil when it was.
    public var trackingError: String? = nil
}

/// What a person reviewing actions did with one; recorded with the step.
public enum ReviewOutcome: String, Sendable, Codable, Hashable {
    case edited, skipped, quit
}

/// The last line: how the episode ended and what it produced.
public struct TrajectoryFinal: Sendable, Codable, Hashable {
    public var type = "final"
    public var endedAt: String
    public var exitStatus: EpisodeExitStatus
    /// Why the episode ended, in words (the model or sandbox error, the limit hit).
    public var detail: String?
    /// The submitted patch; nil when the episode ended without a submission.
    public var submission: String?
    /// The checkout's diff against the base when the episode ended, submitted or not.
    public var finalDiff: String
    public var steps: Int
    public var formatErrors: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var wallTimeMs: Double
    /// Every model name the server reported, in order of first appearance.
    public var modelVersions: [String]
    /// Filled in by scoring when the task has tests.
    public var score: EvaluationResult?
    /// Why scoring failed, when it was asked for and could not grade.
    public var scoreError: String?
}

/// Appends a trajectory one JSON line at a time with a single write(2) each, so saving costs
/// the same at step 1 and step 500, and a killed process loses at most the step in flight.
public final class TrajectoryWriter {
    public let url: URL
    private let descriptor: Int32
    private let encoder: JSONEncoder

    public init(url: URL) throws {
        self.url = url
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw WardenError("trajectory.open", "cannot create the trajectory: \(String(cString: strerror(errno)))", context: url.path)
        }
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    deinit {
        close(descriptor)
    }

    public func append(_ record: some Encodable) throws {
        var line = try encoder.encode(record)
        line.append(0x0a)
        try line.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, base + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    throw WardenError("trajectory.write", "cannot append to the trajectory: \(String(cString: strerror(errno)))", context: url.path)
                }
                offset += written
            }
        }
    }
}

/// A trajectory read back: header, steps, and the final record when the episode finished.
public struct Trajectory: Sendable {
    public var header: TrajectoryHeader
    public var steps: [TrajectoryStep]
    public var final: TrajectoryFinal?
    /// Lines that could not be read (a line cut short by a kill), with their numbers.
    public var damagedLines: [Int]

    public static func read(_ url: URL) throws -> Trajectory {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw WardenError("trajectory.read", "cannot read the trajectory: \(error.localizedDescription)", context: url.path)
        }
        let decoder = JSONDecoder()
        var header: TrajectoryHeader?
        var steps: [TrajectoryStep] = []
        var final: TrajectoryFinal?
        var damaged: [Int] = []
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            let data = Data(line.utf8)
            struct Kind: Decodable { var type: String }
            guard let kind = try? decoder.decode(Kind.self, from: data) else {
                damaged.append(offset + 1)
                continue
            }
            do {
                switch kind.type {
                case "header": header = try decoder.decode(TrajectoryHeader.self, from: data)
                case "step": steps.append(try decoder.decode(TrajectoryStep.self, from: data))
                case "final": final = try decoder.decode(TrajectoryFinal.self, from: data)
                default: damaged.append(offset + 1)
                }
            } catch {
                damaged.append(offset + 1)
            }
        }
        guard let header else {
            throw WardenError("trajectory.read", "no header record; is this a Warden trajectory?", context: url.path)
        }
        return Trajectory(header: header, steps: steps, final: final, damagedLines: damaged)
    }
}

/// ISO 8601 with milliseconds, in UTC: "2026-12-07T01:24:13.990Z".
///
/// Formatted by hand: Foundation's ISO 8601 style took 0.65 ms to set up on first use, on
/// `warden solve`'s way to its first command, and a few microseconds per call after.
func timestamp(_ date: Date = Date()) -> String {
    let interval = date.timeIntervalSince1970
    var seconds = time_t(interval.rounded(.down))
    let milliseconds = min(999, Int(((interval - Double(seconds)) * 1000).rounded(.down)))
    var parts = tm()
    gmtime_r(&seconds, &parts)
    return zeroPadded(parts.tm_year + 1900, width: 4) + "-" + zeroPadded(parts.tm_mon + 1, width: 2) + "-" + zeroPadded(parts.tm_mday, width: 2)
        + "T" + zeroPadded(parts.tm_hour, width: 2) + ":" + zeroPadded(parts.tm_min, width: 2) + ":" + zeroPadded(parts.tm_sec, width: 2)
        + "." + zeroPadded(milliseconds, width: 3) + "Z"
}
