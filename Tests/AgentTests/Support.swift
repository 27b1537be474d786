import Agent
import Foundation
import Sandbox
import Synchronization
import Testing
import WardenCore
import Workspace

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A model that answers with scripted responses, then fails as exhausted.
final class ScriptedModel: ModelClient {
    let name = "scripted"
    private let responses: Mutex<[Result<ModelResponse, ModelError>]>
    let requests = Mutex<[ModelRequest]>([])

    init(_ contents: [String]) {
        responses = Mutex(contents.map { .success(ModelResponse(content: $0, promptTokens: 100, completionTokens: 10)) })
    }

    init(results: [Result<ModelResponse, ModelError>]) {
        responses = Mutex(results)
    }

    func complete(_ request: ModelRequest) async throws -> ModelResponse {
        requests.withLock { $0.append(request) }
        let next = responses.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        guard let next else { throw ModelError(.exhausted, "no more scripted responses") }
        return try next.get()
    }
}

/// A small committed repository and the episodes run on it: each run prepares an Episode
/// (fresh checkout, tracker and jail) in `root/episode`, and `cleanup` closes it.
final class EpisodeFixture: Sendable {
    let root: URL
    let source: URL
    let checkout: URL
    let trajectoryURL: URL
    let observationCharacters: Int
    private let episode = Mutex<Episode?>(nil)

    static let files = [
        "app.py": "def greet(name):\n    return 'Hello ' + name\n",
        "README.md": "# app\n",
    ]

    init(files: [String: String] = EpisodeFixture.files, observationCharacters: Int = 10_000) throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        source = root.appendingPathComponent("source")
        for (path, content) in files {
            let url = source.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        _ = try RepositoryBuilder.commitAll(in: source, message: "base")
        checkout = root.appendingPathComponent("episode/checkout")
        trajectoryURL = root.appendingPathComponent("trajectory.jsonl")
        self.observationCharacters = observationCharacters
    }

    /// Prepares the fixture's episode (once) without running it.
    func prepare(configuration: AgentConfiguration = AgentConfiguration(),
                 task: TaskInstance = TaskInstance(instanceID: "demo-1", problemStatement: "greet() should say Hi.")) async throws -> Episode {
        if let existing = episode.withLock({ $0 }) { return existing }
        var configuration = configuration
        configuration.observationCharacters = observationCharacters
        let spec = EpisodeSpec(task: task, repository: source, configuration: configuration,
                               profile: try SandboxProfile.load(repositoryRoot.appendingPathComponent("Sandboxes/agent.json").path),
                               workDirectory: root.appendingPathComponent("episode"), modelName: "test", wardenVersion: "test")
        let prepared = try await Episode.prepare(spec, trajectory: trajectoryURL)
        episode.withLock { $0 = prepared }
        return prepared
    }

    /// Runs one episode; `setUp` may change the checkout before the first step.
    func run(_ model: any ModelClient, configuration: AgentConfiguration = AgentConfiguration(),
             task: TaskInstance = TaskInstance(instanceID: "demo-1", problemStatement: "greet() should say Hi."),
             setUp: (URL) throws -> Void = { _ in }) async throws -> (TrajectoryFinal, Trajectory) {
        let episode = try await prepare(configuration: configuration, task: task)
        try setUp(checkout)
        let final = try await AgentLoop(model: model, episode: episode).run()
        return (final, try Trajectory.read(trajectoryURL))
    }

    /// Stops the jail and removes everything (the episodes ran to their end, so their
    /// trajectories are complete).
    func cleanup() {
        episode.withLock { $0 }?.environment.shell.close()
        try? FileManager.default.removeItem(at: root)
    }
}

func bash(_ command: String) -> String { "<tool: bash>\n\(command)\n</tool>" }
