import Agent
import ArgumentParser
import EnvironmentServer
import Foundation
import Sandbox
import Scoring
import Tasks
import WardenCore

/// `warden serve`: the environment server RL trainers drive.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the suites' tasks as environments: OpenEnv's reset/step over HTTP and WebSocket, and whole rollouts.",
        discussion: """
            Routes: GET /health, /metadata, /schema, /state?episode_id=ID; POST /reset, /step, /close, /fork,
            /v1/rollouts; WebSocket /ws with OpenEnv's {"type": "reset"|"step"|"state"|"close", "data": ...}.
            Every route but /health needs `Authorization: Bearer TOKEN` (--token or WARDEN_TOKEN) unless
            --insecure-local, which binds to 127.0.0.1 only. Trajectories go to OUT/trajectories/TASK/EPISODE.jsonl.
            SIGTERM drains: no new episodes, every live one closed with its trajectory finished.
            """
    )

    @Argument(help: "Suite directories, task directories or SWE-bench files whose tasks reset may name.")
    var suites: [String]

    @Option(name: .long, help: "Folder of repositories for SWE-bench files.")
    var repos: String?

    @Option(name: .long, help: "Address to bind.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "Port (0: any free port, printed at start).")
    var port: Int = 8000

    @Option(name: .long, help: "The bearer token clients must send (default: $WARDEN_TOKEN).")
    var token: String?

    @Flag(name: .long, help: "Serve without a token, on 127.0.0.1 only.")
    var insecureLocal = false

    @Option(name: .long, help: "Live episodes at once; one more gets CAPACITY_REACHED. Their jails share the host's memory (limits are scaled to fit, as in run).")
    var maxEpisodes: Int = 8

    @Option(name: .long, help: "Seconds without a request after which an episode is closed.")
    var idleSeconds: Double = 600

    @Option(name: .long, help: "Rewards: plus_minus_one (CWM's +1/-1 on resolution) or one_zero.")
    var rewards: String = RewardScheme.plusMinusOne.rawValue

    @Option(name: .long, help: "Directory for trajectories.")
    var out: String = "warden-serve"

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var agentOptions: AgentOptions
    @OptionGroup var metricsOptions: MetricsOptions

    func validate() throws {
        if RewardScheme(rawValue: rewards) == nil { throw ValidationError("--rewards must be plus_minus_one or one_zero") }
        if maxEpisodes < 1 { throw ValidationError("--max-episodes must be at least 1") }
        if insecureLocal && host != "127.0.0.1" && host != "localhost" && host != "::1" {
            throw ValidationError("--insecure-local serves only on loopback; give a --token to bind \(host)")
        }
    }

    func run() async throws {
        try logging.bootstrap(defaultLevel: "info")
        let token = self.token ?? ProcessInfo.processInfo.environment["WARDEN_TOKEN"]
        if token == nil && !insecureLocal {
            throw ValidationError("the server runs commands: give --token TOKEN (or WARDEN_TOKEN), or --insecure-local for loopback only")
        }
        let (agent, _) = try agentOptions.resolve()
        let scratch = try ScratchDirectory()
        var tasks: [String: SuiteTask] = [:]
        for reference in suites {
            let suite = try TaskSuite.load(reference, repos: repos.map { URL(fileURLWithPath: $0) }, cache: scratch.url.appendingPathComponent("repos"))
            for problem in suite.problems { writeStandardError("warden serve: skipped \(problem)\n") }
            for task in suite.tasks {
                if tasks[task.instance.instanceID] != nil { writeStandardError("warden serve: \(task.instance.instanceID) appears twice; the first is served\n") }
                tasks[task.instance.instanceID] = tasks[task.instance.instanceID] ?? task
            }
        }
        guard !tasks.isEmpty else { throw ValidationError("no task could be loaded from \(suites.joined(separator: ", "))") }
        // Live episodes must not promise their jails more memory than the host has.
        var agentProfile = try SandboxProfile.load(agent.sandboxProfile)
        let setupProfile = try SandboxProfile.load("setup")
        var scoringProfiles = [try SandboxProfile.load("tests"), setupProfile]
        if let note = try MemoryBudget.fit(workers: maxEpisodes, agent: &agentProfile, scoring: &scoringProfiles,
                                           availableBytes: MemoryBudget.availableBytes()) {
            writeStandardError("warden serve: \(note)\n")
        }
        var settings = ServerSettings(
            tasks: tasks, configuration: agent, agentProfile: agentProfile,
            evaluator: Evaluator(profile: scoringProfiles[0], setupProfile: scoringProfiles.dropFirst().first, workRoot: scratch.url),
            rewards: RewardScheme(rawValue: rewards) ?? .plusMinusOne, output: URL(fileURLWithPath: out), workRoot: scratch.url,
            maxEpisodes: maxEpisodes, idleSeconds: idleSeconds, wardenVersion: WardenVersion.current)
        let metrics = try metricsOptions.start(command: "warden serve")
        defer { metrics?.server.stop() }
        settings.observer = metrics?.metrics
        let server = EnvironmentServer(registry: EpisodeRegistry(settings: settings), host: host, port: port, token: token)
        let host = self.host, count = tasks.count
        try await server.run { port in
            writeStandardError("warden serve: \(count) task(s) on http://\(host):\(port) (WebSocket ws://\(host):\(port)/ws)\n")
        }
        writeStandardError("warden serve: drained; trajectories in \(out)\n")
    }
}
