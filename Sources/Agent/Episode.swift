import Environments
import Foundation
import Logging
import Sandbox
import Scoring
import Synchronization
import WardenCore
import Workspace

/// The trajectory and step an episode was forked from.
public struct EpisodeParent: Sendable, Codable, Hashable {
    public var trajectory: String
    public var step: Int

    public init(trajectory: String, step: Int) {
        self.trajectory = trajectory
        self.step = step
    }
}

/// How a scored episode turns into a reward: CWM's ±1, or 1/0.
public enum RewardScheme: String, Sendable, Codable, Hashable, CaseIterable {
    case plusMinusOne = "plus_minus_one"
    case oneZero = "one_zero"

    public func reward(resolved: Bool) -> Double {
        switch self {
        case .plusMinusOne: resolved ? 1 : -1
        case .oneZero: resolved ? 1 : 0
        }
    }
}

/// Everything an episode is set up from.
public struct EpisodeSpec: Sendable {
    public var task: TaskInstance
    /// The repository the checkout is materialized from (and the tracker's object source).
    public var repository: URL
    /// Where the repository can be found again; recorded in the trajectory header.
    public var origin: TaskOrigin?
    public var configuration: AgentConfiguration
    public var profile: SandboxProfile
    /// The container image the jail's root is made of, also used for scoring; a host-rootfs
    /// profile is swapped for its `-image` variant.
    public var image: JailImage?
    /// Where the checkout appears in the jail; nil: its host path on the host's root, the
    /// image's `WorkingDir` (else `/testbed`) in an image.
    public var checkoutMountPoint: String?
    /// Where the task's `environment` is built and found; nil: the evaluator's store, else the
    /// default store with the `setup` profile.
    public var environments: EnvironmentStore?
    /// checkout/ and state/ are made here; `close()` removes the directory.
    public var workDirectory: URL
    /// Scores the submission (else the final diff) when the episode ends; nil: not scored.
    public var evaluator: Evaluator?
    /// Where scoring keeps its logs (`warden solve` shows them); nil keeps none.
    public var scoreOutput: URL?
    public var rewards: RewardScheme
    public var reviewer: (any ActionReviewer)?
    /// The model's name for the header (the policy versions are recorded per step).
    public var modelName: String
    public var wardenVersion: String
    /// Set by fork.
    public var parent: EpisodeParent?
    /// Told of jail starts, steps and endings (live metrics); nil tells no one.
    public var observer: (any EpisodeObserver)?
    /// Steps are logged at debug, the end at info, scoring failures as errors; `task` (and
    /// whatever the caller adds, such as `attempt`) is in every record's metadata.
    public var logger: Logger

    public init(task: TaskInstance, repository: URL, origin: TaskOrigin? = nil, configuration: AgentConfiguration,
                profile: SandboxProfile, workDirectory: URL, evaluator: Evaluator? = nil, scoreOutput: URL? = nil,
                rewards: RewardScheme = .plusMinusOne, reviewer: (any ActionReviewer)? = nil, modelName: String,
                wardenVersion: String, parent: EpisodeParent? = nil, image: JailImage? = nil, checkoutMountPoint: String? = nil) {
        self.task = task
        self.repository = repository
        self.origin = origin
        self.configuration = configuration
        self.profile = profile
        self.workDirectory = workDirectory
        self.evaluator = evaluator
        self.scoreOutput = scoreOutput
        self.rewards = rewards
        self.reviewer = reviewer
        self.modelName = modelName
        self.wardenVersion = wardenVersion
        self.parent = parent
        self.image = image
        self.checkoutMountPoint = checkoutMountPoint
        var logger = Logger(label: "warden.episode")
        logger[metadataKey: "task"] = "\(task.instanceID)"
        self.logger = logger
    }
}

extension EpisodeSpec {
    /// The checkout's path in the jail when it is not its host path.
    var jailCheckoutPath: String? {
        checkoutMountPoint ?? image?.checkoutMountPoint
            ?? (task.environment == nil ? nil : TaskEnvironmentMount.checkoutMountPoint)
    }

    /// The task's built environment (built now when the store lacks it); nil for a task without one.
    func preparedEnvironment() async throws -> PreparedEnvironment? {
        guard task.environment != nil else { return nil }
        let store = try environments ?? evaluator?.environments ?? EnvironmentStore(profile: SandboxProfile.load("setup"))
        return try await store.prepare(for: task, repository: repository)
    }
}

/// What a step did, for a trainer: the action's status, the files it changed, and at the end
/// how the episode ended and its score.
public struct EpisodeStepInfo: Sendable, Codable, Hashable {
    public var step: Int
    public var exitCode: Int32?
    public var formatError: String?
    public var changes: [FileChange]
    /// Set when the episode ended with this step.
    public var exitStatus: EpisodeExitStatus?
    public var score: EvaluationResult?
    /// A failure of the harness (the jail, the model server, scoring), not of the policy: a
    /// trainer drops such an episode rather than punish it.
    public var envError: String?
}

/// The answer to one step.
public struct EpisodeStepResult: Sendable {
    /// The messages the model sees next (empty when the episode ended without feedback).
    public var observation: [ChatMessage]
    /// Nil until the episode ends, and when it ends unscored.
    public var reward: Double?
    public var done: Bool
    public var info: EpisodeStepInfo
}

/// One episode: a fresh checkout, its libgit2 tracker, a jailed shell, the conversation and the
/// trajectory file. The agent loop, the environment server, replay and fork all drive one.
///
/// Lifecycle: `prepare` (off the concurrency pool), `reset` (the opening messages, the header),
/// `step` for each model response (parse, execute, record, check limits; when it ends, score
/// and write the final record), `close`. Expected endings are exit statuses; only a harness
/// failure (a trajectory that cannot be written, a jail that cannot start) throws.
public actor Episode {
    public nonisolated let spec: EpisodeSpec
    public nonisolated let trajectoryURL: URL
    public nonisolated let checkout: URL
    public nonisolated let environment: AgentEnvironment
    private let tracker: WorkspaceTracker
    private let writer: TrajectoryWriter
    private let handler: any ActionProtocol
    /// The opening messages and the checked format-error template, rendered at set-up so a
    /// template error comes before any model call.
    private let opening: OpeningPrompt
    private let clock = ContinuousClock()
    private var started: ContinuousClock.Instant
    /// When the step in progress reached the episode (its response in hand).
    private var stepBegun = ContinuousClock.now
    private var deadline: ContinuousClock.Instant

    public private(set) var messages: [ChatMessage] = []
    /// The steps so far, as written to the trajectory (fork rebuilds the conversation from them).
    public private(set) var steps: [TrajectoryStep] = []
    public private(set) var final: TrajectoryFinal?
    private var header: TrajectoryHeader?
    private var formatErrors = 0, consecutiveFormatErrors = 0
    private var promptTokens = 0, completionTokens = 0, contextTokens = 0
    private var modelVersions: [String] = []
    private var submission: String?
    private var score: EvaluationResult?
    private var scoreError: String?
    private var closed = false
    /// The shell's exports as last recorded.
    private var lastExports: [String: String]?

    private init(spec: EpisodeSpec, trajectory: URL, checkout: URL, environment: AgentEnvironment, writer: TrajectoryWriter, opening: OpeningPrompt) {
        self.spec = spec
        self.trajectoryURL = trajectory
        self.checkout = checkout
        self.environment = environment
        self.tracker = environment.tracker
        self.writer = writer
        handler = spec.configuration.protocol.handler
        self.opening = opening
        started = clock.now
        deadline = started + .seconds(spec.configuration.limits.wallTimeSeconds)
    }

    /// Materializes the checkout, then starts the jail and the tracker side by side, each on a
    /// thread of its own: they block on the file system and must not hold a concurrency-pool
    /// thread, and neither needs the other (the jail's start writes nothing in the checkout).
    public static func prepare(_ spec: EpisodeSpec, trajectory: URL) async throws -> Episode {
        let checkout = spec.workDirectory.appendingPathComponent("checkout"), state = spec.workDirectory.appendingPathComponent("state")
        do {
            let taskEnvironment = try await spec.preparedEnvironment()?.mount
            // The jail starts on the reserved, empty checkout while it is materialized: the
            // shell runs nothing until the first step, and the bind shows the files once written.
            let shell = try await onOwnThread {
                try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
                try WorkspaceTracker.reserveCheckout(at: checkout)
                let profile = spec.image == nil ? spec.profile : try spec.profile.forImage()
                StartupTrace.mark("reserved")
                return ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout, image: spec.image,
                                                                         mountPoint: spec.jailCheckoutPath, environmentMount: taskEnvironment))
            }
            let prepared: Unchecked<(AgentEnvironment, TrajectoryWriter)>
            let opening: OpeningPrompt
            do {
                async let jailStarted: Void = onOwnThread {
                    let begun = ContinuousClock.now
                    StartupTrace.mark("jail start")
                    try shell.start()
                    StartupTrace.mark("jail started")
                    spec.observer?.jailStarted(seconds: seconds(since: begun))
                }
                async let tracked = onOwnThread {
                    StartupTrace.mark("materialize")
                    try WorkspaceTracker.materialize(source: spec.repository, commit: spec.task.baseCommit ?? "HEAD", into: checkout)
                    StartupTrace.mark("materialized")
                    defer { StartupTrace.mark("tracker ready") }
                    return Unchecked((try WorkspaceTracker(checkout: checkout, stateDirectory: state, objectSource: spec.repository),
                                      try TrajectoryWriter(url: trajectory)))
                }
                // The opening prompt needs neither: it is rendered while they run.
                opening = try OpeningPrompt(task: spec.task, checkout: shell.configuration.checkout, configuration: spec.configuration,
                                            protocol: spec.configuration.protocol.handler)
                try await jailStarted
                let trackedValue = try await tracked
                prepared = Unchecked((AgentEnvironment(shell: shell, tracker: trackedValue.value.0, observationCharacters: spec.configuration.observationCharacters),
                                      trackedValue.value.1))
            } catch {
                shell.close()
                throw error
            }
            let (environment, writer) = prepared.value
            return Episode(spec: spec, trajectory: trajectory, checkout: checkout, environment: environment, writer: writer, opening: opening)
        } catch let setUpFailure {
            // A half-made work directory is the harness's own scratch space: it goes, and the
            // set-up failure is what the caller reports.
            if FileManager.default.fileExists(atPath: spec.workDirectory.path) {
                do { try HostTree.remove(atPath: spec.workDirectory.path) } catch {
                    throw WardenError("episode.prepare", "\(setUpFailure); then the work directory could not be removed: \(error)",
                                      context: spec.workDirectory.path)
                }
            }
            throw setUpFailure
        }
    }

    public var tools: [ToolSchema] { handler.tools }
    public var isDone: Bool { final != nil }

    /// Renders the opening messages and writes the trajectory header. The wall-clock budget
    /// starts here.
    @discardableResult
    public func reset() throws -> [ChatMessage] {
        guard header == nil else { return messages }
        defer { StartupTrace.mark("reset") }
        return try begin(with: opening.messages, truncation: opening.truncation)
    }

    private func begin(with opening: [ChatMessage], truncation: PromptTruncation?) throws -> [ChatMessage] {
        started = clock.now
        deadline = started + .seconds(spec.configuration.limits.wallTimeSeconds)
        messages = opening
        let header = TrajectoryHeader(
            wardenVersion: spec.wardenVersion, startedAt: timestamp(), task: spec.task, sourceRepository: spec.repository.path,
            origin: spec.origin, parent: spec.parent, baseCommit: tracker.baseCommitID, baseTree: tracker.baseTreeID,
            checkout: environment.shell.configuration.checkout, sandboxProfile: environment.shell.configuration.profile.name,
            model: spec.modelName, configuration: spec.configuration, messages: opening, tools: handler.tools,
            promptTruncation: truncation)
        try writer.append(header)
        self.header = header
        spec.observer?.episodeStarted()
        return opening
    }

    /// The wall-clock instant the episode must end by; a driver bounds model calls with it.
    public var wallClockDeadline: ContinuousClock.Instant { deadline }

    /// The next model request, or nil when the episode has ended. A limit reached before the
    /// call ends the episode here (score and final record included).
    public func nextRequest() async throws -> ModelRequest? {
        guard final == nil else { return nil }
        if let (status, detail) = limitReached() {
            try await finish(status, detail)
            return nil
        }
        let limits = spec.configuration.limits
        return ModelRequest(messages: messages, tools: handler.tools,
                            maxTokens: min(limits.maxResponseTokens, max(1, limits.maxContextTokens - contextTokens)))
    }

    private func limitReached() -> (EpisodeExitStatus, String?)? {
        let limits = spec.configuration.limits
        if Task.isCancelled { return (.cancelled, "interrupted") }
        if clock.now >= deadline { return (.wallTime, "the episode ran for \(Int(limits.wallTimeSeconds)) s") }
        if steps.count >= limits.maxSteps { return (.stepLimit, "\(limits.maxSteps) steps") }
        if contextTokens >= limits.maxContextTokens { return (.tokenLimit, "the context reached \(contextTokens) tokens") }
        if limits.maxTotalTokens > 0 && promptTokens + completionTokens >= limits.maxTotalTokens {
            return (.tokenLimit, "the episode used \(promptTokens + completionTokens) tokens")
        }
        return nil
    }

    /// The model could not answer: its error becomes the episode's exit status.
    public func end(modelFailure error: any Error) async throws -> EpisodeStepResult {
        let (status, detail): (EpisodeExitStatus, String) = switch error {
        case let error as ModelError where error.kind == .contextLength: (.contextLength, error.message)
        case let error as ModelError where error.kind == .cancelled: (.cancelled, error.message)
        case let error as ModelError: (.modelError, error.description)
        case is DeadlineExceeded: (.wallTime, "the model call outlasted the episode's wall-clock budget")
        case is CancellationError: (.cancelled, "interrupted")
        default: (.modelError, "\(error)")
        }
        try await finish(status, detail)
        return ended(EpisodeStepInfo(step: steps.count, changes: []), observation: [])
    }

    /// One model response: parse it with the episode's protocol, run the action in the jail,
    /// record the step with its libgit2 changes, and decide whether the episode goes on.
    public func step(_ response: ModelResponse) async throws -> EpisodeStepResult {
        guard header != nil else { throw WardenError("episode.state", "step before reset", context: trajectoryURL.path) }
        guard final == nil else { throw WardenError("episode.state", "the episode has ended; reset a new one", context: trajectoryURL.path) }
        let limits = spec.configuration.limits
        let index = steps.count + 1
        let stepStarted = timestamp()
        stepBegun = clock.now
        let usedPrompt = response.promptTokens ?? estimateTokens(messages)
        let usedCompletion = response.completionTokens ?? max(1, response.content.utf8.count / 4)
        promptTokens += usedPrompt
        completionTokens += usedCompletion
        contextTokens = usedPrompt + usedCompletion
        if let version = response.model, !modelVersions.contains(version) { modelVersions.append(version) }
        messages.append(handler.assistantMessage(response))

        // A format error is fed back and counted. With CWM's rule (submitEndsEpisode off), a
        // reply without a tool call after a successful submission is the final response.
        let turn = handler.parse(response)
        guard case .action(var action, let reasoning, let callID) = turn else {
            guard case let .formatError(problem, reasoning, _) = turn else { preconditionFailure("a turn is an action or a format error") }
            if submission != nil && !spec.configuration.submitEndsEpisode {
                try record(TrajectoryStep(index: index, startedAt: stepStarted, endedAt: timestamp(), response: response,
                                          reasoning: reasoning, observation: [], durationMs: 0, changes: [], gitignoreChanged: false))
                try await finish(.submitted, nil)
                return ended(EpisodeStepInfo(step: index, changes: []), observation: [])
            }
            formatErrors += 1
            consecutiveFormatErrors += 1
            let feedback = handler.formatFeedback(
                Templates.render(opening.formatErrorTemplate, ["error": problem, "format_reminder": handler.formatReminder]), turn: turn)
            messages += feedback
            try record(TrajectoryStep(index: index, startedAt: stepStarted, endedAt: timestamp(), response: response,
                                      reasoning: reasoning, formatError: problem, observation: feedback, durationMs: 0,
                                      changes: [], gitignoreChanged: false))
            let info = EpisodeStepInfo(step: index, formatError: problem, changes: [])
            if consecutiveFormatErrors >= limits.maxConsecutiveFormatErrors {
                try await finish(.formatErrors, "\(consecutiveFormatErrors) format errors in a row")
            } else if let (status, detail) = limitReached() {
                try await finish(status, detail)
            }
            return final == nil ? EpisodeStepResult(observation: feedback, reward: nil, done: false, info: info) : ended(info, observation: feedback)
        }
        consecutiveFormatErrors = 0

        // A person may review the action first.
        var review: ReviewOutcome?
        if let reviewer = spec.reviewer {
            switch await reviewer.review(action) {
            case .run: break
            case let .replace(replacement): action = replacement; review = .edited
            case .skip: review = .skipped
            case .quit: review = .quit
            }
        }

        // Run it in the jail, then record what changed through libgit2.
        var outcome: ToolOutcome
        if review == .skipped || review == .quit {
            outcome = ToolOutcome(body: "The operator skipped this action.", toolOutput: nil, durationMs: 0, cancelled: false)
        } else {
            let remaining = deadline - clock.now
            let timeout = min(limits.commandTimeoutSeconds, max(1, Double(remaining.components.seconds)))
            do {
                outcome = try await environment.execute(action, timeout: timeout)
            } catch {
                try await finish(.sandboxError, "\(error)")
                return ended(EpisodeStepInfo(step: index, changes: []), observation: [])
            }
        }
        // Mid-episode, only what is in the checkout makes a scan fail (directories nested past
        // libgit2's 100 levels, paths past its length limit): the agent's doing. The agent is
        // told and the episode goes on to be scored; ending it as a harness failure would let a
        // policy trade a -1 for an episode the trainer drops.
        var snapshot: WorkspaceSnapshot?
        var trackingError: String?
        do { snapshot = try tracker.snapshot() } catch {
            let cause = (error as? WardenError)?.message ?? "\(error)"
            trackingError = cause
            spec.logger.warning("cannot record the checkout's changes", metadata: ["step": "\(index)", "error": "\(error)"])
            outcome.body += "\n\n" + FileTools.untrackable(cause)
        }

        // The observation with the budget, and the step record.
        // Exports are recorded with the step only when they changed, and not twice.
        var command = outcome.command
        let exports = command?.exports
        command?.exports = nil
        let changedExports = exports.flatMap { $0 == lastExports ? nil : $0 }
        if let exports { lastExports = exports }
        let budget = Budget(remainingTurns: max(0, limits.maxSteps - index), remainingTokens: max(0, limits.maxContextTokens - contextTokens))
        let observation = handler.observation(outcome.body, budget: budget, turn: .action(action, reasoning: reasoning, callID: callID))
        messages += observation
        try record(TrajectoryStep(
            index: index, startedAt: stepStarted, endedAt: timestamp(), response: response, reasoning: reasoning,
            action: action, review: review, observation: observation, observationBody: outcome.body, budget: budget, command: command,
            toolOutput: outcome.toolOutput, exitCode: outcome.exitCode, durationMs: outcome.durationMs,
            cwd: environment.shell.cwd, exports: changedExports, submission: outcome.submission, changes: snapshot?.sincePrevious ?? [],
            treeID: snapshot?.treeID, gitignoreChanged: snapshot?.gitignoreChanged ?? false, trackingError: trackingError))
        let info = EpisodeStepInfo(step: index, exitCode: outcome.exitCode, changes: snapshot?.sincePrevious ?? [])

        // Whether the episode goes on.
        if review == .quit {
            try await finish(.cancelled, "the operator quit")
        } else if outcome.cancelled || Task.isCancelled {
            try await finish(.cancelled, "interrupted")
        } else if let submitted = outcome.submission {
            submission = submitted
            if spec.configuration.submitEndsEpisode { try await finish(.submitted, nil) }
        }
        if final == nil, let (status, detail) = limitReached() { try await finish(status, detail) }
        return final == nil ? EpisodeStepResult(observation: observation, reward: nil, done: false, info: info) : ended(info, observation: observation)
    }

    private func record(_ step: TrajectoryStep) throws {
        try writer.append(step)
        steps.append(step)
        if let observer = spec.observer {
            let commandSeconds = step.durationMs / 1000
            observer.stepFinished(modelSeconds: step.response.latencyMs / 1000, commandSeconds: commandSeconds,
                                  harnessSeconds: max(0, seconds(since: stepBegun) - commandSeconds))
        }
        // The per-step path: the metadata is built only when debug records are kept.
        guard spec.logger.logLevel <= .debug else { return }
        var metadata: Logger.Metadata = ["step": "\(step.index)", "ms": "\(Int(step.durationMs.rounded()))"]
        if let action = step.action { metadata["action"] = "\(action.toolName)" }
        if let code = step.exitCode { metadata["exit"] = "\(code)" }
        if let problem = step.formatError { metadata["format_error"] = "\(problem)" }
        if !step.changes.isEmpty { metadata["changed"] = "\(step.changes.count)" }
        spec.logger.debug("step", metadata: metadata)
    }

    /// The step result of the step that ended the episode, with its score and reward.
    private func ended(_ info: EpisodeStepInfo, observation: [ChatMessage]) -> EpisodeStepResult {
        var info = info
        info.exitStatus = final?.exitStatus
        info.score = score
        info.envError = environmentError
        let reward = score.map { spec.rewards.reward(resolved: $0.resolved) }
        return EpisodeStepResult(observation: observation, reward: reward, done: true, info: info)
    }

    /// A harness failure that ended or spoiled the episode: a trainer drops it rather than punish the policy.
    private var environmentError: String? {
        guard let final else { return nil }
        switch final.exitStatus {
        case .sandboxError, .modelError: return final.detail ?? final.exitStatus.rawValue
        default: return scoreError.map { "scoring failed: \($0)" }
        }
    }

    /// The final record: always written, with the diff even when nothing was submitted, and the
    /// score when the episode has an evaluator.
    private func finish(_ status: EpisodeExitStatus, _ reason: String?, scoring: Bool = true) async throws {
        guard final == nil else { return }
        var detail = reason
        let finalDiff: String
        do { finalDiff = try tracker.diff() } catch {
            finalDiff = ""
            detail = [detail, "the final diff could not be computed: \(error)"].compactMap { $0 }.joined(separator: "; ")
        }
        if scoring, let evaluator = spec.evaluator {
            do {
                score = try await evaluator.evaluate(spec.task, repository: spec.repository, patch: submission ?? finalDiff, output: spec.scoreOutput,
                                                     image: spec.image, mountPoint: spec.jailCheckoutPath)
            } catch {
                scoreError = "\(error)"
                spec.logger.error("scoring failed", metadata: ["error": "\(error)"])
            }
        }
        let elapsed = clock.now - started
        let final = TrajectoryFinal(
            endedAt: timestamp(), exitStatus: status, detail: detail, submission: submission,
            finalDiff: finalDiff, steps: steps.count, formatErrors: formatErrors, promptTokens: promptTokens,
            completionTokens: completionTokens,
            wallTimeMs: Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15,
            modelVersions: modelVersions, score: score, scoreError: scoreError)
        self.final = final
        spec.observer?.episodeFinished(status, resolved: score?.resolved)
        try writer.append(final)
        var metadata: Logger.Metadata = ["status": "\(status.rawValue)", "steps": "\(steps.count)"]
        if let detail { metadata["detail"] = "\(detail)" }
        if let score { metadata["resolved"] = "\(score.resolved)" }
        spec.logger.info("episode ended", metadata: metadata)
    }

    /// Ends a live episode as cancelled (its final record written), stops the jail and removes
    /// the work directory. Safe to call more than once. Returns what could not be done, for the
    /// caller to report: nothing here may vanish.
    public func close() async -> [WardenError] {
        guard !closed else { return [] }
        closed = true
        var problems: [WardenError] = []
        if header != nil && final == nil {
            // Not scored: nobody asked for this episode's result, and a test run costs seconds.
            do { try await finish(.cancelled, "closed before it ended", scoring: false) } catch {
                problems.append(WardenError("episode.close", "cannot write the final record: \(error)", context: trajectoryURL.path))
            }
        }
        environment.shell.close()
        do { try HostTree.remove(atPath: spec.workDirectory.path) } catch {
            problems.append(WardenError("episode.close", "cannot remove the work directory: \(error)", context: spec.workDirectory.path))
        }
        return problems
    }

    // MARK: - Fork

    /// A new episode in a fresh checkout and jail that continues this one from after `step`
    /// (0 = before the first step): the files of that step's snapshot tree, its cwd and exports,
    /// and the conversation up to it. This episode is left untouched.
    public func fork(at step: Int, workDirectory: URL, trajectory: URL, model: String? = nil) async throws -> Episode {
        guard let header else { throw WardenError("episode.fork", "fork before reset", context: trajectoryURL.path) }
        var spec = self.spec
        spec.workDirectory = workDirectory
        spec.parent = EpisodeParent(trajectory: trajectoryURL.path, step: step)
        if let model { spec.modelName = model }
        return try await fork(at: step, spec: spec, trajectory: trajectory, header: header, history: steps)
    }

    /// Forks with the conversation of `history` (this episode's steps, or the recorded steps it
    /// reproduced), taking the files from this episode's snapshot at `step`.
    private func fork(at step: Int, spec: EpisodeSpec, trajectory: URL, header: TrajectoryHeader, history: [TrajectoryStep]) async throws -> Episode {
        guard (0...min(steps.count, history.count)).contains(step) else {
            throw WardenError("episode.fork", "step \(step) is not in 0...\(min(steps.count, history.count))", context: trajectoryURL.path)
        }
        let tree = steps.prefix(step).last(where: { $0.treeID != nil })?.treeID
        let patch = try tree.map { try tracker.diffData(of: $0) } ?? Data()
        let child = try await Episode.prepare(spec, trajectory: trajectory)
        do {
            try await child.resume(header: header, steps: Array(history.prefix(step)), patch: patch, tree: tree)
        } catch {
            throw await child.closing(after: error)
        }
        return child
    }

    /// Forks a recorded trajectory whose episode is gone: its first `step` responses are run
    /// again in a scratch episode, each step's snapshot tree checked against the recorded one,
    /// and the fork starts from that checkout with the recorded conversation. `spec` describes
    /// the fork (its work directory, model, evaluator); the trajectory's own configuration is used.
    public static func fork(_ recorded: Trajectory, from parentURL: URL, at step: Int, spec: EpisodeSpec, trajectory: URL) async throws -> Episode {
        guard (0...recorded.steps.count).contains(step) else {
            throw WardenError("episode.fork", "step \(step) is not in 0...\(recorded.steps.count)", context: parentURL.path)
        }
        let scratch = spec.workDirectory.deletingLastPathComponent().appendingPathComponent(spec.workDirectory.lastPathComponent + "-rebuild")
        var rebuild = spec
        rebuild.workDirectory = scratch
        rebuild.evaluator = nil
        rebuild.reviewer = RecordedReviews(recorded.steps)
        let source = try await Episode.prepare(rebuild, trajectory: scratch.appendingPathComponent("rebuild.jsonl"))
        func closeSource() async throws {
            let problems = await source.close()
            if let problem = problems.first { throw problem }
        }
        do {
            try await source.reset()
            for recordedStep in recorded.steps.prefix(step) {
                _ = try await source.step(recordedStep.response)
                let rebuilt = await source.steps.last
                if let expected = recordedStep.treeID, rebuilt?.treeID != expected {
                    throw WardenError("episode.fork", "step \(recordedStep.index) did not reproduce: its files are tree \(rebuilt?.treeID ?? "none"), "
                                      + "the trajectory recorded \(expected); the fork would not start from the recorded state", context: parentURL.path)
                }
            }
            var spec = spec
            spec.parent = EpisodeParent(trajectory: parentURL.path, step: step)
            let child = try await source.fork(at: step, spec: spec, trajectory: trajectory, header: recorded.header, history: recorded.steps)
            try await closeSource()
            return child
        } catch {
            throw await source.closing(after: error)
        }
    }

    /// Closes an episode that `error` made useless; the error is what is reported, with anything
    /// closing could not do added to it.
    func closing(after error: any Error) async -> any Error {
        let problems = await close()
        guard !problems.isEmpty else { return error }
        return WardenError("episode.fork", "\(error); then, closing \(trajectoryURL.lastPathComponent): "
                           + problems.map(\.description).joined(separator: "; "), context: trajectoryURL.path)
    }

    /// Brings a fresh episode to the end of `steps`: the files (a binary patch from the base to
    /// the step's tree, checked by tree id), the shell's directory, the conversation and the counters.
    func resume(header parent: TrajectoryHeader, steps kept: [TrajectoryStep], patch: Data, tree: String?) async throws {
        if !patch.isEmpty { try tracker.apply(patchData: patch) }
        let snapshot = try tracker.snapshot()
        if let tree, snapshot.treeID != tree {
            throw WardenError("episode.fork", "the forked checkout's tree is \(snapshot.treeID), not the recorded \(tree)", context: checkout.path)
        }
        // The shell starts where the kept steps left it (a jailed `cd`, not recorded as a step).
        // Inside the parent's checkout the path is rebased on this one; elsewhere (/tmp) it stays.
        let here = environment.shell.configuration.checkout
        if let recorded = kept.last(where: { $0.cwd != nil })?.cwd,
           case let cwd = recorded == parent.checkout ? here
               : recorded.hasPrefix(parent.checkout + "/") ? here + recorded.dropFirst(parent.checkout.count) : recorded,
           cwd != here {
            let quoted = "'" + cwd.replacingOccurrences(of: "'", with: "'\\''") + "'"
            // Snapshot trees hold no empty directories; the shell standing in one proves it existed.
            let make = cwd.hasPrefix(here + "/") ? "mkdir -p -- \(quoted) && " : ""
            let moved = try await environment.shell.run("\(make)cd -- \(quoted)", timeout: 10)
            guard moved.exitCode == 0, environment.shell.cwd == cwd else {
                throw WardenError("episode.fork", "the forked shell cannot enter \(cwd): \(moved.combined.text)", context: checkout.path)
            }
        }
        // And with the exports the kept steps last recorded: set what differs, unset what is gone.
        if let recorded = kept.last(where: { $0.exports != nil })?.exports {
            let current = try await environment.shell.run("true", timeout: 10).exports ?? [:]
            func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            let identifier = /[A-Za-z_][A-Za-z0-9_]*/
            let set = recorded.filter { current[$0.key] != $0.value && $0.key.wholeMatch(of: identifier) != nil }.sorted { $0.key < $1.key }.map { "export \($0.key)=\(quote($0.value))" }
            let unset = current.keys.filter { recorded[$0] == nil }.sorted().map { "unset \($0)" }
            if !(set + unset).isEmpty {
                let restored = try await environment.shell.run((set + unset).joined(separator: "\n"), timeout: 10)
                guard restored.exitCode == 0, restored.exports == recorded else {
                    throw WardenError("episode.fork", "the forked shell's exports could not be restored: \(restored.combined.text)", context: checkout.path)
                }
            }
            lastExports = recorded
        }
        var conversation = parent.messages
        for step in kept {
            conversation.append(handler.assistantMessage(step.response))
            conversation += step.observation
        }
        _ = try begin(with: parent.messages, truncation: parent.promptTruncation)
        messages = conversation
        for step in kept {
            try record(step)
            promptTokens += step.response.promptTokens ?? 0
            completionTokens += step.response.completionTokens ?? 0
            if step.formatError != nil { formatErrors += 1; consecutiveFormatErrors += 1 } else { consecutiveFormatErrors = 0 }
            if let submitted = step.submission { submission = submitted }
            if let version = step.response.model, !modelVersions.contains(version) { modelVersions.append(version) }
        }
        if let last = kept.last {
            contextTokens = (last.response.promptTokens ?? 0) + (last.response.completionTokens ?? 0)
        }
    }
}

/// Gives back, action by action, what the person reviewing a recorded episode decided, so a
/// replay or a rebuild takes the same actions.
public final class RecordedReviews: ActionReviewer {
    private let decisions: Mutex<[ReviewDecision]>

    public init(_ steps: [TrajectoryStep]) {
        decisions = Mutex(steps.compactMap { step in
            guard let action = step.action else { return nil }
            return switch step.review {
            case .edited?: .replace(action)
            case .skipped?: .skip
            case .quit?: .quit
            case nil: .run
            }
        })
    }

    public func review(_ action: AgentAction) async -> ReviewDecision {
        decisions.withLock { $0.isEmpty ? .run : $0.removeFirst() }
    }
}

/// Carries values made on a set-up thread to the one task that uses them.
struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
