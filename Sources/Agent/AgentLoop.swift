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

/// The agent loop: the model on one side, the episode on the other. The episode renders the
/// prompt, parses each response, runs the action in the jail and records the step; the loop
/// only asks the model, bounded by the episode's wall-clock budget, until the episode ends.
public struct AgentLoop: Sendable {
    public var model: any ModelClient
    public var episode: Episode
    public var onEvent: @Sendable (AgentEvent) -> Void

    public init(model: any ModelClient, episode: Episode, onEvent: @escaping @Sendable (AgentEvent) -> Void = { _ in }) {
        self.model = model
        self.episode = episode
        self.onEvent = onEvent
    }

    /// Runs the episode to its end and returns the final record (written to the trajectory).
    public func run() async throws -> TrajectoryFinal {
        try await episode.reset()
        while let request = try await episode.nextRequest() {
            let deadline = await episode.wallClockDeadline
            let response: ModelResponse
            do {
                response = try await withDeadline(deadline) { [model] in try await model.complete(request) }
            } catch {
                _ = try await episode.end(modelFailure: error)
                break
            }
            let result = try await episode.step(response)
            if let step = await episode.steps.last { onEvent(.step(step)) }
            if result.done { break }
        }
        guard let final = await episode.final else {
            throw WardenError("episode.state", "the episode stopped without a final record", context: episode.trajectoryURL.path)
        }
        onEvent(.finished(final))
        return final
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
