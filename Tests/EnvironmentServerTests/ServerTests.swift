import Agent
import EnvironmentServer
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTypes
import HummingbirdWSClient
import Logging
import Sandbox
import Scoring
import Tasks
import Testing
import WardenCore

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A server on a loopback port, serving two starter tasks.
struct RunningServer {
    let port: Int
    let registry: EpisodeRegistry
    let output: URL
    let task: Task<Void, any Error>
    let root: URL
    static let token = "test-token-\(UUID().uuidString)"

    static func start(maxEpisodes: Int = 4, idleSeconds: Double = 600) async throws -> RunningServer {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-serve-test-\(UUID().uuidString)")
        var tasks: [String: SuiteTask] = [:]
        for name in ["warden__calcly-1", "warden__strutil-1"] {
            for task in try TaskSuite.load(repositoryRoot.appendingPathComponent("Tasks/starter/\(name)").path,
                                           cache: root.appendingPathComponent("repos")).tasks {
                tasks[task.instance.instanceID] = task
            }
        }
        let profiles = repositoryRoot.appendingPathComponent("Sandboxes")
        let settings = ServerSettings(
            tasks: tasks, configuration: AgentConfiguration(),
            agentProfile: try SandboxProfile.load(profiles.appendingPathComponent("agent.json").path),
            evaluator: Evaluator(profile: try SandboxProfile.load(profiles.appendingPathComponent("tests.json").path), workRoot: root),
            output: root.appendingPathComponent("out"), workRoot: root, maxEpisodes: maxEpisodes, idleSeconds: idleSeconds, wardenVersion: "test")
        let registry = EpisodeRegistry(settings: settings)
        let server = EnvironmentServer(registry: registry, port: 0, token: token)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { port in continuation.yield(port) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw WardenError("test", "the server did not start") }
        return RunningServer(port: port, registry: registry, output: settings.output, task: task, root: root)
    }

    /// Cancels the server, which drains its episodes, and removes its files.
    func stop() async {
        task.cancel()
        _ = await task.result
        try? FileManager.default.removeItem(at: root)
    }

    /// One HTTP request with a real client; the status and the JSON body.
    func http(_ method: String, _ path: String, body: String? = nil, token: String? = RunningServer.token) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = body.map { Data($0.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
    }

    /// A WebSocket conversation: each message sent gets the next reply, decoded.
    func webSocket(token: String? = RunningServer.token, _ conversation: @escaping @Sendable (WebSocketConversation) async throws -> Void) async throws {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws", configuration: .init(maxFrameSize: 64 << 20, additionalHeaders: headers),
                                          logger: Logger(label: "test.ws")) { inbound, outbound, _ in
            try await conversation(WebSocketConversation(inbound: inbound.messages(maxSize: 64 << 20).makeAsyncIterator(), outbound: outbound))
        }
    }
}

/// Sends OpenEnv messages and reads the replies.
final class WebSocketConversation: @unchecked Sendable {
    private var inbound: WebSocketInboundMessageStream.AsyncIterator
    private let outbound: WebSocketOutboundWriter

    init(inbound: WebSocketInboundMessageStream.AsyncIterator, outbound: WebSocketOutboundWriter) {
        self.inbound = inbound
        self.outbound = outbound
    }

    func send(_ text: String) async throws -> [String: Any] {
        try await outbound.write(.text(text))
        guard case let .text(reply)? = try await inbound.next() else { throw WardenError("test", "no reply to \(text.prefix(80))") }
        return try #require(try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any])
    }

    func send(_ object: [String: Any]) async throws -> [String: Any] {
        try await send(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
    }

    func close() async throws {
        try await outbound.write(.text(#"{"type": "close"}"#))
    }
}

func tool(_ name: String, _ body: String) -> [String: Any] {
    ["response": "<tool: \(name)>\n\(body)\n</tool>", "model_version": "policy-1"]
}

@Suite("warden serve over real sockets", .serialized)
struct ServerTests {
    @Test("an oracle episode over the WebSocket reaches reward +1; an empty submission gets -1")
    func webSocketRewards() async throws {
        let server = try await RunningServer.start()
        defer { Task { await server.stop() } }
        let gold = try #require(try TaskSuite.load(repositoryRoot.appendingPathComponent("Tasks/starter/warden__calcly-1").path,
                                                   cache: server.root.appendingPathComponent("gold")).tasks.first?.instance.goldPatch)
        try await server.webSocket { ws in
            let opening = try await ws.send(["type": "reset", "data": ["task_id": "warden__calcly-1"]])
            #expect(opening["type"] as? String == "observation")
            let data = try #require(opening["data"] as? [String: Any])
            #expect(data["done"] as? Bool == false)
            let messages = try #require((data["observation"] as? [String: Any])?["messages"] as? [[String: Any]])
            #expect(messages.map { $0["role"] as? String } == ["system", "user"])

            _ = try await ws.send(["type": "step", "data": tool("create", "/tmp/gold.patch\n" + gold)])
            let applied = try await ws.send(["type": "step", "data": tool("bash", "git apply /tmp/gold.patch")])
            let info = try #require(((applied["data"] as? [String: Any])?["observation"] as? [String: Any])?["info"] as? [String: Any])
            #expect(info["exit_code"] as? Int == 0)
            let submitted = try #require(try await ws.send(["type": "step", "data": tool("submit", "")])["data"] as? [String: Any])
            #expect(submitted["done"] as? Bool == true)
            #expect(submitted["reward"] as? Double == 1)
            let state = try #require(try await ws.send(["type": "state"])["data"] as? [String: Any])
            #expect(state["step_count"] as? Int == 3)
            #expect(state["exit_status"] as? String == "submitted")

            _ = try await ws.send(["type": "reset", "data": ["task_id": "warden__calcly-1"]])
            _ = try await ws.send(["type": "step", "data": tool("bash", "printf 'diff --git a/x b/x\\n' > /tmp/empty.patch")])
            let empty = try #require(try await ws.send(["type": "step", "data": tool("submit", "/tmp/empty.patch")])["data"] as? [String: Any])
            #expect(empty["done"] as? Bool == true)
            #expect(empty["reward"] as? Double == -1)
            try await ws.close()
        }
        // Both trajectories are complete; the policy version of each step is recorded.
        let files = try FileManager.default.contentsOfDirectory(atPath: server.output.appendingPathComponent("trajectories/warden__calcly-1").path)
        #expect(files.count == 2)
        for file in files {
            let trajectory = try Trajectory.read(server.output.appendingPathComponent("trajectories/warden__calcly-1/\(file)"))
            #expect(trajectory.final?.exitStatus == .submitted)
            #expect(trajectory.final?.modelVersions == ["policy-1"])
        }
    }

    @Test("OpenEnv's error codes: invalid JSON, unknown type, validation, step before reset, capacity")
    func errorCodes() async throws {
        let server = try await RunningServer.start(maxEpisodes: 1)
        defer { Task { await server.stop() } }
        @Sendable func code(_ reply: [String: Any]) -> String? { (reply["data"] as? [String: Any])?["code"] as? String }
        try await server.webSocket { ws in
            #expect(code(try await ws.send("{not json")) == "INVALID_JSON")
            #expect(code(try await ws.send(["type": "dance"])) == "UNKNOWN_TYPE")
            #expect(code(try await ws.send(["type": "reset", "data": ["protocol": "cwm"]])) == "VALIDATION_ERROR")
            #expect(code(try await ws.send(["type": "reset", "data": ["task_id": "no-such-task"]])) == "VALIDATION_ERROR")
            #expect(code(try await ws.send(["type": "step", "data": tool("bash", "ls")])) == "SESSION_ERROR")
            let opened = try await ws.send(["type": "reset", "data": ["task_id": "warden__strutil-1"]])
            #expect(opened["type"] as? String == "observation")
            // The one slot is taken: an HTTP reset is refused with OpenEnv's capacity error.
            let (status, body) = try await server.http("POST", "/reset", body: #"{"task_id": "warden__strutil-1"}"#)
            #expect(status == 503)
            let detail = try #require(body["detail"] as? [String: Any])
            #expect(detail["code"] as? String == "CAPACITY_REACHED")
            #expect(detail["max_sessions"] as? Int == 1)
            try await ws.close()
        }
    }

    @Test("every route but /health needs the bearer token; HTTP reset, step, state and close address an episode by id")
    func httpAndToken() async throws {
        let server = try await RunningServer.start()
        defer { Task { await server.stop() } }
        #expect(try await server.http("GET", "/health", token: nil).0 == 200)
        #expect(try await server.http("POST", "/reset", body: #"{"task_id": "warden__strutil-1"}"#, token: nil).0 == 401)
        #expect(try await server.http("POST", "/reset", body: #"{"task_id": "warden__strutil-1"}"#, token: "wrong").0 == 401)
        await #expect(throws: (any Error).self) {
            try await server.webSocket(token: nil) { ws in _ = try await ws.send(["type": "state"]) }
        }
        let (status, reset) = try await server.http("POST", "/reset", body: #"{"task_id": "warden__strutil-1", "episode_id": "ep-1"}"#)
        #expect(status == 200)
        #expect((reset["observation"] as? [String: Any])?["episode_id"] as? String == "ep-1")
        let step = #"{"episode_id": "ep-1", "action": {"response": "<tool: bash>\necho hi > hi.txt\n</tool>"}}"#
        let (_, stepped) = try await server.http("POST", "/step", body: step)
        let info = try #require((stepped["observation"] as? [String: Any])?["info"] as? [String: Any])
        #expect((info["changes"] as? [[String: Any]])?.first?["path"] as? String == "hi.txt")
        #expect(stepped["done"] as? Bool == false)
        let (_, state) = try await server.http("GET", "/state?episode_id=ep-1")
        #expect(state["step_count"] as? Int == 1)
        #expect(try await server.http("GET", "/schema").1["action"] != nil)
        #expect(try await server.http("POST", "/close", body: #"{"episode_id": "ep-1"}"#).0 == 200)
        #expect(try await server.http("GET", "/state?episode_id=ep-1").0 == 404)
        let final = try #require(try Trajectory.read(server.output.appendingPathComponent("trajectories/warden__strutil-1/ep-1.jsonl")).final)
        #expect(final.exitStatus == .cancelled)
    }

    @Test("a fork over HTTP continues from its step in its own checkout; idle episodes are reaped; stopping drains")
    func forkReapDrain() async throws {
        let server = try await RunningServer.start(idleSeconds: 1)
        defer { Task { await server.stop() } }
        _ = try await server.http("POST", "/reset", body: #"{"task_id": "warden__strutil-1", "episode_id": "parent"}"#)
        _ = try await server.http("POST", "/step", body: #"{"episode_id": "parent", "action": {"response": "<tool: bash>\necho one > one.txt\n</tool>"}}"#)
        _ = try await server.http("POST", "/step", body: #"{"episode_id": "parent", "action": {"response": "<tool: bash>\necho two > two.txt\n</tool>"}}"#)
        let (status, fork) = try await server.http("POST", "/fork", body: #"{"episode_id": "parent", "step": 1, "new_episode_id": "child"}"#)
        #expect(status == 200, "\(fork)")
        let (_, listed) = try await server.http("POST", "/step", body: #"{"episode_id": "child", "action": {"response": "<tool: bash>\nls *.txt\n</tool>"}}"#)
        let text = ((listed["observation"] as? [String: Any])?["messages"] as? [[String: Any]])?.first?["content"] as? String ?? ""
        #expect(text.contains("one.txt") && !text.contains("two.txt"))
        // Untouched for more than a second, both are reaped (the reaper wakes every second).
        try await Task.sleep(for: .seconds(3))
        #expect(await server.registry.liveCount == 0)
        let parent = try Trajectory.read(server.output.appendingPathComponent("trajectories/warden__strutil-1/parent.jsonl"))
        #expect(parent.final?.exitStatus == .cancelled)
        #expect(parent.steps.count == 2)
        let child = try Trajectory.read(server.output.appendingPathComponent("trajectories/warden__strutil-1/child.jsonl"))
        #expect(child.header.parent?.step == 1)
        #expect(child.steps.count == 2)

        // A live episode at shutdown gets its final record.
        _ = try await server.http("POST", "/reset", body: #"{"task_id": "warden__strutil-1", "episode_id": "late"}"#)
        server.task.cancel()
        _ = await server.task.result
        #expect(try Trajectory.read(server.output.appendingPathComponent("trajectories/warden__strutil-1/late.jsonl")).final?.exitStatus == .cancelled)
    }

    @Test("OpenEnv's published Python client (openenv-core) drives an episode to reward +1, and an empty one to -1")
    func openEnvClient() async throws {
        let venv = ProcessInfo.processInfo.environment["WARDEN_OPENENV_VENV"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/warden/openenv").path
        let python = venv + "/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "run scripts/install.sh: it installs openenv-core into \(venv)")
        let server = try await RunningServer.start()
        defer { Task { await server.stop() } }
        let gold = server.root.appendingPathComponent("gold.patch")
        let task = try #require(try TaskSuite.load(repositoryRoot.appendingPathComponent("Tasks/starter/warden__calcly-1").path,
                                                   cache: server.root.appendingPathComponent("gold-repos")).tasks.first)
        try (task.instance.goldPatch ?? "").write(to: gold, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [repositoryRoot.appendingPathComponent("Tests/EnvironmentServerTests/openenv_client.py").path,
                             "http://127.0.0.1:\(server.port)", RunningServer.token, "warden__calcly-1", gold.path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(String(decoding: stderr, as: UTF8.self))")
        let results = try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: Any])
        #expect(results["opening_roles"] as? [String] == ["system", "user"])
        #expect(results["applied_exit_code"] as? Int == 0)
        let goldResult = try #require(results["gold"] as? [String: Any])
        #expect(goldResult["reward"] as? Double == 1)
        #expect(goldResult["resolved"] as? Bool == true)
        #expect((results["empty"] as? [String: Any])?["reward"] as? Double == -1)
    }
}
