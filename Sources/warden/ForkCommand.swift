import Agent
import ArgumentParser
import Foundation
import Sandbox
import Scoring
import WardenCore

/// `warden fork`: continue a recorded episode from one of its steps with another model.
struct ForkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fork",
        abstract: "Continue a trajectory from step N in a fresh jail, writing a new trajectory that names its parent.",
        discussion: """
            The recorded responses of steps 1...N are run again in a scratch jail, each step's files
            checked against the recorded snapshot tree; the fork then starts from those files with
            the recorded conversation, and the model given by --model takes step N+1 on. The parent
            trajectory is never written. Suite tasks are scored at the end unless --no-score.
            """
    )

    @Argument(help: "The trajectory.jsonl to fork.")
    var trajectory: String

    @Option(name: .long, help: "The last recorded step kept (0 = only the opening prompt).")
    var step: Int

    @Option(name: .long, help: "The repository to check out, when it is not where the trajectory says.")
    var repo: String?

    @Option(name: .long, help: "Directory for the fork's trajectory.jsonl and patch.diff.")
    var out: String?

    @Flag(name: .long, help: "Do not score the fork's submission.")
    var noScore = false

    @Flag(name: .long, help: "Print only the final summary, not each step.")
    var quiet = false

    @OptionGroup var modelOptions: ModelOptions

    func run() async throws {
        let parentURL = URL(fileURLWithPath: trajectory).standardizedFileURL
        let recorded = try Trajectory.read(parentURL)
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-fork-\(UUID().uuidString)")
        defer { removeScratch(work) }
        var task = recorded.header.task
        task.baseCommit = recorded.header.baseCommit
        let (repository, origin) = try locateRepository(recorded.header, override: repo, cache: work.appendingPathComponent("repos"))
        let configuration = recorded.header.configuration
        let client = try modelOptions.makeClient(goldPatch: task.goldPatch, protocol: configuration.protocol.handler)
        let output = URL(fileURLWithPath: out ?? "warden-runs/\(task.instanceID)-fork-\(step)-\(Int(Date().timeIntervalSince1970))")
        let scored = origin.map { if case .repository = $0 { false } else { true } } ?? false
        let spec = EpisodeSpec(
            task: task, repository: repository, origin: origin, configuration: configuration,
            profile: try SandboxProfile.load(recorded.header.sandboxProfile), workDirectory: work.appendingPathComponent("episode"),
            evaluator: scored && !noScore
                ? Evaluator(profile: try SandboxProfile.load("tests"), setupProfile: try SandboxProfile.load("setup"), workRoot: work) : nil,
            scoreOutput: output.appendingPathComponent("score"), modelName: client.name, wardenVersion: WardenVersion.current)
        let episode = try await Episode.fork(recorded, from: parentURL, at: step, spec: spec, trajectory: output.appendingPathComponent("trajectory.jsonl"))
        writeStandardError("warden fork: \(task.instanceID) from step \(step) of \(parentURL.path) with \(client.name); trajectory in \(episode.trajectoryURL.path)\n")

        let final = try await runInteractively(episode, model: client, quiet: quiet, output: output, command: "fork")
        try exitStatusCode(for: final)
    }
}
