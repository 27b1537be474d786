import Agent
import EnvironmentServer
import Foundation
import Hummingbird
import Synchronization
import Tasks
import Testing
import WardenCore

/// A trainer's inference server on loopback, in vLLM's shape: token ids and logprobs with every
/// completion, and a `model` that changes after two calls (a checkpoint pushed mid-episode).
final class RequestLog: Sendable {
    let bodies = Mutex<[Data]>([])
}

struct FakeInferenceServer {
    let port: Int
    let task: Task<Void, any Error>
    /// The request bodies, in order.
    let requests: RequestLog

    static func start(replies: [String]) async throws -> FakeInferenceServer {
        let calls = Mutex(0)
        let log = RequestLog()
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 16 << 20)
            log.bodies.withLock { $0.append(Data(buffer: body)) }
            let index = calls.withLock { value -> Int in defer { value += 1 }; return value }
            let text = index < replies.count ? replies[index] : "<tool: submit>\n</tool>"
            // The prompt's ids extend the previous turn's prompt and completion, as a chat
            // template that appends does: 100 + turn for the observation in between.
            var prompt = [1, 2, 3]
            for turn in 0..<index { prompt += [10 * (turn + 1), 10 * (turn + 1) + 1, 100 + turn] }
            let completion = [10 * (index + 1), 10 * (index + 1) + 1]
            let reply: [String: Any] = [
                "id": "cmpl-\(index)", "object": "chat.completion", "model": index < 2 ? "policy-A" : "policy-B",
                "prompt_token_ids": prompt,
                "choices": [[
                    "index": 0, "finish_reason": "stop", "token_ids": completion,
                    "message": ["role": "assistant", "content": text],
                    "logprobs": ["content": completion.map { ["token": "t\($0)", "logprob": -0.5, "bytes": [], "top_logprobs": []] as [String: Any] }],
                ]],
                "usage": ["prompt_tokens": prompt.count, "completion_tokens": completion.count, "total_tokens": prompt.count + completion.count],
            ]
            let model = index < 2 ? "policy-A" : "policy-B"
            let logprobs = completion.map { ["token": "t\($0)", "logprob": -0.5, "bytes": [], "top_logprobs": []] as [String: Any] }
            guard (try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["stream"] as? Bool == true else {
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: reply))))
            }
            // Streamed as vLLM streams with `return_token_ids`: the prompt's ids first, then one
            // chunk per completion token with its id and logprob, the finish, the usage.
            var chunks: [[String: Any]] = [["model": model, "prompt_token_ids": prompt,
                                            "choices": [["index": 0, "delta": ["role": "assistant", "content": ""], "token_ids": []]]]]
            for (position, id) in completion.enumerated() {
                let piece = position == 0 ? String(text.prefix(text.count / 2)) : String(text.dropFirst(text.count / 2))
                chunks.append(["model": model, "choices": [["index": 0, "delta": ["content": piece], "token_ids": [id],
                                                            "logprobs": ["content": [logprobs[position]]]]]])
            }
            chunks.append(["model": model, "choices": [["index": 0, "delta": [:], "finish_reason": "stop"]]])
            chunks.append(["model": model, "choices": [], "usage": reply["usage"]!])
            var events = ""
            for chunk in chunks { events += "data: " + String(decoding: try JSONSerialization.data(withJSONObject: chunk), as: UTF8.self) + "\n\n" }
            events += "data: [DONE]\n\n"
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: .init(byteBuffer: ByteBuffer(string: events)))
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw WardenError("test", "the inference server did not start") }
        return FakeInferenceServer(port: port, task: task, requests: log)
    }
}

@Suite("POST /v1/rollouts against a loopback inference server", .serialized)
struct RolloutTests {
    @Test("a rollout records token ids, logprobs and a loss mask per step, the reward, and the policy changing mid-episode",
          arguments: [false, true])
    func rollout(stream: Bool) async throws {
        let server = try await RunningServer.start()
        defer { Task { await server.stop() } }
        let gold = try #require(try TaskSuite.load(repositoryRoot.appendingPathComponent("Tasks/starter/warden__calcly-1").path,
                                                   cache: server.root.appendingPathComponent("gold")).tasks.first?.instance.goldPatch)
        let inference = try await FakeInferenceServer.start(replies: [
            "<tool: create>\n/tmp/gold.patch\n\(gold)\n</tool>", "<tool: bash>\ngit apply /tmp/gold.patch\n</tool>", "<tool: submit>\n</tool>",
        ])
        defer { inference.task.cancel() }
        let body: [String: Any] = ["task_id": "warden__calcly-1", "base_url": "http://127.0.0.1:\(inference.port)/v1", "model": "policy",
                                   "sampling": ["temperature": 0.7, "max_tokens": 512], "stream": stream]
        let (status, result) = try await server.http("POST", "/v1/rollouts",
                                                     body: String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self))
        #expect(status == 200, "\(result)")
        #expect(result["reward"] as? Double == 1)
        #expect(result["exit_status"] as? String == "submitted")
        #expect(result["policy_versions"] as? [String] == ["policy-A", "policy-B"])
        #expect(result["policy_changed"] as? Bool == true)
        let turns = try #require(result["turns"] as? [[String: Any]])
        #expect(turns.count == 3)
        #expect(turns[0]["completion_token_ids"] as? [Int] == [10, 11])
        #expect(turns[0]["prompt_token_ids"] as? [Int] == [1, 2, 3])
        #expect(turns[2]["loss_mask"] as? [Int] == [1, 1])
        #expect((turns[1]["logprobs"] as? [[String: Any]])?.count == 2)
        #expect(turns[1]["policy_version_end"] as? String == "policy-A")
        #expect(turns[2]["policy_version_start"] as? String == "policy-B")
        // One sequence for the episode: prompt, then completions (mask 1) and observations (mask 0).
        let sequence = try #require(result["sequence"] as? [String: Any])
        #expect(sequence["token_ids"] as? [Int] == [1, 2, 3, 10, 11, 100, 20, 21, 101, 30, 31])
        #expect(sequence["loss_mask"] as? [Int] == [0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1])
        // The trainer's sampling reached its server, with logprobs and token ids asked for.
        let firstBody = try #require(inference.requests.bodies.withLock { $0.first })
        let first = try #require(try JSONSerialization.jsonObject(with: firstBody) as? [String: Any])
        #expect(first["temperature"] as? Double == 0.7)
        #expect(first["logprobs"] as? Bool == true)
        #expect(first["return_token_ids"] as? Bool == true)
        #expect(first["stream"] as? Bool == stream)
    }
}
