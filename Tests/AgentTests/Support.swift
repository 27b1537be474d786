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

/// A materialized checkout of a small repository, its tracker and a jailed environment.
struct EpisodeFixture {
    let root: URL
    let checkout: URL
    let environment: AgentEnvironment
    let trajectoryURL: URL

    static let files = [
        "app.py": "def greet(name):\n    return 'Hello ' + name\n",
        "README.md": "# app\n",
    ]

    init(files: [String: String] = Self.files, observationCharacters: Int = 10_000) throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let source = root.appendingPathComponent("source")
        for (path, content) in files {
            let url = source.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        let base = try RepositoryBuilder.commitAll(in: source, message: "base")
        checkout = root.appendingPathComponent("checkout")
        try WorkspaceTracker.materialize(source: source, commit: base, into: checkout)
        let state = root.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: state)
        let profile = try SandboxProfile.load(repositoryRoot.appendingPathComponent("Sandboxes/agent.json").path)
        let shell = ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout))
        environment = AgentEnvironment(shell: shell, tracker: tracker, observationCharacters: observationCharacters)
        trajectoryURL = root.appendingPathComponent("trajectory.jsonl")
    }

    func run(_ model: any ModelClient, configuration: AgentConfiguration = AgentConfiguration(),
             task: TaskInstance = TaskInstance(instanceID: "demo-1", problemStatement: "greet() should say Hi.")) async throws -> (TrajectoryFinal, Trajectory) {
        let loop = AgentLoop(task: task, model: model, environment: environment, configuration: configuration)
        let final = try await loop.run(writingTo: try TrajectoryWriter(url: trajectoryURL), wardenVersion: "test")
        return (final, try Trajectory.read(trajectoryURL))
    }

    func cleanup() {
        environment.shell.close()
        try? FileManager.default.removeItem(at: root)
    }
}

func bash(_ command: String) -> String { "<tool: bash>\n\(command)\n</tool>" }
