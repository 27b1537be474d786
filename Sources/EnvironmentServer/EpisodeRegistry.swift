import Agent
import Foundation
import Logging
import Sandbox
import Scoring
import Tasks
import WardenCore

/// What the server was started with.
public struct ServerSettings: Sendable {
    /// The tasks reset may name, by instance id.
    public var tasks: [String: SuiteTask]
    /// The agent configuration every episode starts from (a reset may change protocol and limits).
    public var configuration: AgentConfiguration
    public var agentProfile: SandboxProfile
    public var evaluator: Evaluator
    public var rewards: RewardScheme
    /// Trajectories go to `output/trajectories/TASK/EPISODE.jsonl`.
    public var output: URL
    /// Checkouts and state, removed as each episode closes.
    public var workRoot: URL
    /// Live episodes at once; one more is refused with CAPACITY_REACHED.
    public var maxEpisodes: Int
    /// An episode untouched this long is closed (its trajectory finished as cancelled).
    public var idleSeconds: Double
    public var wardenVersion: String
    /// Told of every episode's jail start, steps and end (live metrics).
    public var observer: (any EpisodeObserver)?

    public init(tasks: [String: SuiteTask], configuration: AgentConfiguration, agentProfile: SandboxProfile, evaluator: Evaluator,
                rewards: RewardScheme = .plusMinusOne, output: URL, workRoot: URL, maxEpisodes: Int = 64, idleSeconds: Double = 600,
                wardenVersion: String) {
        self.tasks = tasks
        self.configuration = configuration
        self.agentProfile = agentProfile
        self.evaluator = evaluator
        self.rewards = rewards
        self.output = output
        self.workRoot = workRoot
        self.maxEpisodes = maxEpisodes
        self.idleSeconds = idleSeconds
        self.wardenVersion = wardenVersion
    }
}

/// The live episodes of a server, by episode id: opened by reset (or fork), stepped, closed by
/// the client, by the idle reaper, or by the drain at shutdown. Capacity is reserved before an
/// episode is prepared, so concurrent resets cannot overshoot it.
public actor EpisodeRegistry {
    struct Live {
        let episode: Episode
        let taskID: String
        var lastActivity: ContinuousClock.Instant
    }

    public nonisolated let settings: ServerSettings
    private let logger: Logger
    private var live: [String: Live] = [:]
    private var reserved = 0
    private var draining = false

    public init(settings: ServerSettings, logger: Logger = Logger(label: "warden.serve")) {
        self.settings = settings
        self.logger = logger
    }

    public var liveCount: Int { live.count }

    /// Reserves a slot, or refuses with OpenEnv's capacity error.
    private func reserve() throws(ServerError) {
        if draining { throw ServerError(.capacityReached, "the server is shutting down and takes no new episodes",
                                        activeSessions: live.count + reserved, maxSessions: settings.maxEpisodes) }
        guard live.count + reserved < settings.maxEpisodes else {
            throw ServerError(.capacityReached, "all \(settings.maxEpisodes) episode slots are in use",
                              activeSessions: live.count + reserved, maxSessions: settings.maxEpisodes)
        }
        reserved += 1
    }

    private func identifier(_ requested: String?) throws(ServerError) -> String {
        guard let requested else { return UUID().uuidString.lowercased() }
        guard (1...255).contains(requested.utf8.count),
              requested.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }), requested.first != "." else {
            throw ServerError(.validationError, "episode_id must be 1-255 letters, digits, '.', '_' or '-', not starting with '.'")
        }
        guard live[requested] == nil else { throw ServerError(.validationError, "episode \(requested) is already live") }
        return requested
    }

    private func trajectoryURL(task: String, episode: String) -> URL {
        settings.output.appendingPathComponent("trajectories").appendingPathComponent(task).appendingPathComponent("\(episode).jsonl")
    }

    /// Prepares and resets a new episode on `request.taskID`.
    public func open(_ request: ResetRequest, modelName: String = "trainer") async throws(ServerError) -> (id: String, episode: Episode, opening: [ChatMessage]) {
        guard let task = settings.tasks[request.taskID] else {
            throw ServerError(.validationError, "unknown task_id \(request.taskID); the server has \(settings.tasks.count) task(s), e.g. "
                              + settings.tasks.keys.sorted().prefix(3).joined(separator: ", "))
        }
        if task.repositoryInImage {
            throw ServerError(.validationError, "task \(request.taskID) takes its repository from its image, and warden serve runs tasks "
                              + "on the host's root; start the server with --repos holding the repository")
        }
        let id = try identifier(request.episodeID)
        try reserve()
        defer { reserved -= 1 }
        var configuration = settings.configuration
        if let name = request.protocol { configuration.protocol = name }
        if let limits = request.limits { configuration.limits = limits.applied(to: configuration.limits) }
        var spec = EpisodeSpec(task: task.instance, repository: task.repository, origin: task.origin, configuration: configuration,
                               profile: settings.agentProfile, workDirectory: settings.workRoot.appendingPathComponent("episode-\(id)"),
                               evaluator: settings.evaluator, rewards: request.rewards ?? settings.rewards, modelName: modelName,
                               wardenVersion: settings.wardenVersion)
        spec.observer = settings.observer
        let episode: Episode
        let opening: [ChatMessage]
        do {
            episode = try await Episode.prepare(spec, trajectory: trajectoryURL(task: task.instance.instanceID, episode: id))
            opening = try await episode.reset()
        } catch {
            logger.error("episode set-up failed", metadata: ["task": "\(request.taskID)", "episode": "\(id)", "error": "\(error)"])
            throw ServerError(.factoryError, "the episode could not be set up: \(error)")
        }
        live[id] = Live(episode: episode, taskID: task.instance.instanceID, lastActivity: .now)
        logger.info("episode opened", metadata: ["task": "\(request.taskID)", "episode": "\(id)", "live": "\(live.count)"])
        return (id, episode, opening)
    }

    /// The live episode `id`, marked as active now.
    public func liveEpisode(_ id: String) throws(ServerError) -> Episode {
        guard var entry = live[id] else { throw ServerError(.sessionError, "no live episode \(id); reset one first") }
        entry.lastActivity = .now
        live[id] = entry
        return entry.episode
    }

    /// One step of episode `id`. The episode's own actor serializes steps of one episode.
    public func step(_ id: String, _ action: StepAction) async throws(ServerError) -> EpisodeStepResult {
        let episode = try liveEpisode(id)
        do {
            let result = try await episode.step(action.modelResponse)
            touch(id)
            if result.done {
                logger.info("episode ended", metadata: ["episode": "\(id)", "status": "\(result.info.exitStatus?.rawValue ?? "?")",
                                                        "reward": "\(result.reward.map { "\($0)" } ?? "none")"])
            }
            return result
        } catch let error as WardenError where error.code == "episode.state" {
            throw ServerError(.sessionError, error.message)
        } catch {
            throw ServerError(.executionError, "\(error)")
        }
    }

    private func touch(_ id: String) {
        live[id]?.lastActivity = .now
    }

    /// OpenEnv's state: `{episode_id, step_count}` and Warden's summary.
    public func state(_ id: String) async throws(ServerError) -> JSONValue {
        guard let entry = live[id] else { throw ServerError(.sessionError, "no live episode \(id)") }
        let steps = await entry.episode.steps.count
        let final = await entry.episode.final
        return .object([
            "episode_id": .string(id),
            "step_count": .number(Double(steps)),
            "task_id": .string(entry.taskID),
            "done": .bool(final != nil),
            "exit_status": final.map { .string($0.exitStatus.rawValue) } ?? .null,
            "trajectory": .string(entry.episode.trajectoryURL.path),
        ])
    }

    /// A new live episode continuing `id` after `step`, in its own checkout and jail.
    public func fork(_ id: String, at step: Int, newID: String?) async throws(ServerError) -> (id: String, episode: Episode) {
        guard let parent = live[id] else { throw ServerError(.sessionError, "no live episode \(id)") }
        let childID = try identifier(newID)
        try reserve()
        defer { reserved -= 1 }
        let child: Episode
        do {
            child = try await parent.episode.fork(at: step, workDirectory: settings.workRoot.appendingPathComponent("episode-\(childID)"),
                                                  trajectory: trajectoryURL(task: parent.taskID, episode: childID))
        } catch {
            throw ServerError(.executionError, "the fork could not be made: \(error)")
        }
        live[childID] = Live(episode: child, taskID: parent.taskID, lastActivity: .now)
        logger.info("episode forked", metadata: ["episode": "\(childID)", "parent": "\(id)", "step": "\(step)"])
        return (childID, child)
    }

    /// Closes episode `id`: a live one ends `cancelled`, its trajectory finished.
    public func close(_ id: String) async {
        guard let entry = live.removeValue(forKey: id) else { return }
        for problem in await entry.episode.close() {
            logger.error("closing an episode", metadata: ["episode": "\(id)", "error": "\(problem)"])
        }
        logger.info("episode closed", metadata: ["episode": "\(id)", "live": "\(live.count)"])
    }

    /// Closes every episode idle longer than the settings allow; returns how many.
    @discardableResult
    public func reapIdle(now: ContinuousClock.Instant = .now) async -> Int {
        let limit = Duration.milliseconds(Int64(settings.idleSeconds * 1000))
        let idle = live.filter { now - $0.value.lastActivity > limit }.map(\.key)
        for id in idle {
            logger.notice("reaping an idle episode", metadata: ["episode": "\(id)"])
            await close(id)
        }
        return idle.count
    }

    /// Stops taking episodes and closes the live ones, each trajectory finished.
    public func drain() async {
        draining = true
        let ids = Array(live.keys)
        logger.notice("draining", metadata: ["live": "\(ids.count)"])
        for id in ids { await close(id) }
    }
}
