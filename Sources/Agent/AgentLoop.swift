import Foundation
import WardenCore

/// What a person reviewing actions (`--confirm`) decided.
public enum ReviewDecision: Sendable {
    case run
    case replace(AgentAction)
    case skip
    case quit
}

/// Asks before each action; `warden solve --confirm` puts a person here.
public protocol ActionReviewer: Sendable {
    func review(_ action: AgentAction) async -> ReviewDecision
}

/// Something worth showing live: a finished step, then the episode's end.
public enum AgentEvent: Sendable {
    case step(TrajectoryStep)
    case finished(TrajectoryFinal)
}

/// The agent loop: render the prompt, query the model, parse one action, execute it in the
/// jail, record the step with its libgit2 changes, render the observation; repeat until an
/// exit. Expected endings (limits, format errors, model and sandbox failures, cancellation)
/// are exit statuses in the trajectory; only a trajectory that cannot be written throws.
public struct AgentLoop: Sendable {
    public var task: TaskInstance
    public var model: any ModelClient
    public var environment: AgentEnvironment
    public var configuration: AgentConfiguration
    public var reviewer: (any ActionReviewer)?
    /// Scores the patch (the submission, else the final diff) before the final record is
    /// written, so the score lands in it. Nil skips scoring.
    public var scorer: (@Sendable (String) async -> JSONValue?)?
    public var onEvent: @Sendable (AgentEvent) -> Void

    public init(task: TaskInstance, model: any ModelClient, environment: AgentEnvironment, configuration: AgentConfiguration,
                reviewer: (any ActionReviewer)? = nil, scorer: (@Sendable (String) async -> JSONValue?)? = nil,
                onEvent: @escaping @Sendable (AgentEvent) -> Void = { _ in }) {
        self.task = task
        self.model = model
        self.environment = environment
        self.configuration = configuration
        self.reviewer = reviewer
        self.scorer = scorer
        self.onEvent = onEvent
    }

    public func run(writingTo writer: TrajectoryWriter, sourceRepository: String? = nil, wardenVersion: String) async throws -> TrajectoryFinal {
        let protocolHandler = try actionProtocol(named: configuration.protocol)
        let limits = configuration.limits
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started + .seconds(limits.wallTimeSeconds)

        // 1. The opening prompt, the issue text cut to the prompt budget.
        let opening = try OpeningPrompt(task: task, checkout: environment.shell.configuration.checkout, configuration: configuration, protocol: protocolHandler)
        var messages = opening.messages
        try writer.append(TrajectoryHeader(
            wardenVersion: wardenVersion, startedAt: timestamp(), task: task, sourceRepository: sourceRepository,
            baseCommit: environment.tracker.baseCommitID, baseTree: environment.tracker.baseTreeID,
            checkout: environment.shell.configuration.checkout, sandboxProfile: environment.shell.configuration.profile.name,
            model: model.name, configuration: configuration, messages: messages, tools: protocolHandler.tools,
            promptTruncation: opening.truncation))

        var steps = 0, formatErrors = 0, consecutiveFormatErrors = 0
        var promptTokens = 0, completionTokens = 0, contextTokens = 0
        var modelVersions: [String] = []
        var submission: String?
        var ending: (EpisodeExitStatus, String?)?

        while ending == nil {
            // 2. Limits, checked before every model call.
            if Task.isCancelled { ending = (.cancelled, "interrupted"); break }
            if clock.now >= deadline { ending = (.wallTime, "the episode ran for \(Int(limits.wallTimeSeconds)) s"); break }
            if steps >= limits.maxSteps { ending = (.stepLimit, "\(limits.maxSteps) steps"); break }
            if contextTokens >= limits.maxContextTokens { ending = (.tokenLimit, "the context reached \(contextTokens) tokens"); break }
            if limits.maxTotalTokens > 0 && promptTokens + completionTokens >= limits.maxTotalTokens {
                ending = (.tokenLimit, "the episode used \(promptTokens + completionTokens) tokens"); break
            }

            // 3. Query the model, bounded by the wall-clock budget.
            let stepStarted = timestamp()
            let request = ModelRequest(messages: messages, tools: protocolHandler.tools,
                                       maxTokens: min(limits.maxResponseTokens, max(1, limits.maxContextTokens - contextTokens)))
            let response: ModelResponse
            do {
                response = try await withDeadline(deadline) { try await model.complete(request) }
            } catch let error as ModelError {
                ending = switch error.kind {
                case .contextLength: (.contextLength, error.message)
                case .cancelled: (.cancelled, error.message)
                default: (.modelError, error.description)
                }
                break
            } catch is DeadlineExceeded {
                ending = (.wallTime, "the model call outlasted the episode's wall-clock budget"); break
            } catch is CancellationError {
                ending = (.cancelled, "interrupted"); break
            } catch {
                ending = (.modelError, "\(error)"); break
            }
            steps += 1
            let usedPrompt = response.promptTokens ?? estimateTokens(messages)
            let usedCompletion = response.completionTokens ?? max(1, response.content.utf8.count / 4)
            promptTokens += usedPrompt
            completionTokens += usedCompletion
            contextTokens = usedPrompt + usedCompletion
            if let version = response.model, !modelVersions.contains(version) { modelVersions.append(version) }
            messages.append(protocolHandler.assistantMessage(response))

            // 4. Parse exactly one action; a format error is fed back and counted. With CWM's
            //    rule (submitEndsEpisode off), a reply without a tool call after a successful
            //    submission is the final response, which ends the episode.
            let turn = protocolHandler.parse(response)
            guard case .action(var action, let reasoning, _) = turn else {
                guard case let .formatError(problem, reasoning, _) = turn else { continue }
                if submission != nil && !configuration.submitEndsEpisode {
                    let step = TrajectoryStep(index: steps, startedAt: stepStarted, endedAt: timestamp(), response: response,
                                              reasoning: reasoning, observation: [], durationMs: 0, changes: [], gitignoreChanged: false)
                    try writer.append(step)
                    onEvent(.step(step))
                    ending = (.submitted, nil)
                    break
                }
                formatErrors += 1
                consecutiveFormatErrors += 1
                let feedback = protocolHandler.formatFeedback(
                    Templates.render(opening.formatErrorTemplate, ["error": problem, "format_reminder": protocolHandler.formatReminder]), turn: turn)
                messages += feedback
                let step = TrajectoryStep(index: steps, startedAt: stepStarted, endedAt: timestamp(), response: response,
                                          reasoning: reasoning, formatError: problem, observation: feedback, durationMs: 0,
                                          changes: [], gitignoreChanged: false)
                try writer.append(step)
                onEvent(.step(step))
                if consecutiveFormatErrors >= limits.maxConsecutiveFormatErrors {
                    ending = (.formatErrors, "\(consecutiveFormatErrors) format errors in a row")
                }
                continue
            }
            consecutiveFormatErrors = 0

            // 5. A person may review the action first.
            var review: String?
            if let reviewer {
                switch await reviewer.review(action) {
                case .run: break
                case let .replace(replacement): action = replacement; review = "edited"
                case .skip: review = "skipped"
                case .quit: review = "quit"
                }
            }

            // 6. Execute it in the jail, then record what changed through libgit2.
            let outcome: ToolOutcome
            if review == "skipped" || review == "quit" {
                outcome = ToolOutcome(body: "The operator skipped this action.", toolOutput: nil, durationMs: 0, cancelled: false)
            } else {
                let remaining = deadline - clock.now
                let timeout = min(limits.commandTimeoutSeconds, max(1, Double(remaining.components.seconds)))
                do {
                    outcome = try await environment.execute(action, timeout: timeout)
                } catch {
                    ending = (.sandboxError, "\(error)")
                    break
                }
            }
            let snapshot: WorkspaceSnapshot?
            do { snapshot = try environment.tracker.snapshot() } catch {
                ending = (.sandboxError, "cannot record the checkout's changes: \(error)")
                break
            }

            // 7. Render the observation with the budget, and record the step.
            let budget = Budget(remainingTurns: max(0, limits.maxSteps - steps), remainingTokens: max(0, limits.maxContextTokens - contextTokens))
            let observation = protocolHandler.observation(outcome.body, budget: budget, turn: .action(action, reasoning: reasoning, callID: callID(of: turn)))
            messages += observation
            let step = TrajectoryStep(
                index: steps, startedAt: stepStarted, endedAt: timestamp(), response: response, reasoning: reasoning,
                action: action, review: review, observation: observation, command: outcome.command,
                toolOutput: outcome.toolOutput, exitCode: outcome.exitCode, durationMs: outcome.durationMs,
                cwd: environment.shell.cwd, changes: snapshot?.sincePrevious ?? [], treeID: snapshot?.treeID,
                gitignoreChanged: snapshot?.gitignoreChanged ?? false)
            try writer.append(step)
            onEvent(.step(step))

            // 8. Decide whether the episode goes on.
            if review == "quit" { ending = (.cancelled, "the operator quit") }
            else if outcome.cancelled || Task.isCancelled { ending = (.cancelled, "interrupted") }
            else if let submitted = outcome.submission {
                submission = submitted
                if configuration.submitEndsEpisode { ending = (.submitted, nil) }
            }
        }

        // 9. The final record: always written, with the diff even when nothing was submitted.
        var detail = ending?.1
        let finalDiff: String
        do { finalDiff = try environment.tracker.diff() } catch {
            finalDiff = ""
            detail = [detail, "the final diff could not be computed: \(error)"].compactMap { $0 }.joined(separator: "; ")
        }
        let score = await scorer?(submission ?? finalDiff)
        let elapsed = clock.now - started
        let final = TrajectoryFinal(
            endedAt: timestamp(), exitStatus: ending?.0 ?? .cancelled, detail: detail, submission: submission,
            finalDiff: finalDiff, steps: steps, formatErrors: formatErrors, promptTokens: promptTokens,
            completionTokens: completionTokens,
            wallTimeMs: Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15,
            modelVersions: modelVersions, score: score)
        try writer.append(final)
        onEvent(.finished(final))
        return final
    }

    private func callID(of turn: ParsedTurn) -> String? {
        if case let .action(_, _, id) = turn { return id }
        return nil
    }
}

/// A rough token count for servers that report no usage: four bytes a token.
func estimateTokens(_ messages: [ChatMessage]) -> Int {
    messages.reduce(0) { $0 + $1.content.utf8.count / 4 + 4 }
}

struct DeadlineExceeded: Error {}

/// Runs `operation`, giving up with DeadlineExceeded at `deadline`.
func withDeadline<T: Sendable>(_ deadline: ContinuousClock.Instant, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(until: deadline, clock: .continuous)
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw DeadlineExceeded() }
        return first
    }
}
