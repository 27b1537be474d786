import Foundation
import Testing
import WardenCore
@testable import Models

/// One chat-completion chunk as vLLM streams it (`delta` is the JSON of the delta object).
func chunk(delta: String = "{}", finish: String? = nil, model: String = "qwen-test", extraChoice: String = "") -> String {
    let reason = finish.map { "\"\($0)\"" } ?? "null"
    return #"{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "\#(model)", "#
        + #""choices": [{"index": 0, "delta": \#(delta), "logprobs": null, "finish_reason": \#(reason)\#(extraChoice)}]}"#
}

/// The last chunk a server sends when asked for `include_usage`: no choices, only usage.
func usageChunk(prompt: Int = 12, completion: Int = 3, model: String = "qwen-test") -> String {
    #"{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "\#(model)", "choices": [], "#
        + #""usage": {"prompt_tokens": \#(prompt), "completion_tokens": \#(completion), "total_tokens": \#(prompt + completion)}}"#
}

/// `data:` events for `chunks`, ended by `[DONE]` unless `done` is false.
func events(_ chunks: [String], done: Bool = true, newline: String = "\n") -> [String] {
    (chunks + (done ? ["[DONE]"] : [])).map { "data: \($0)\(newline)\(newline)" }
}

/// A plain streamed reply: role, the content in pieces, finish, usage, `[DONE]`.
func streamedHello(_ pieces: [String] = ["Hel", "lo", " there."], done: Bool = true) -> [String] {
    events([chunk(delta: #"{"role": "assistant", "content": ""}"#)]
        + pieces.map { chunk(delta: #"{"content": "\#($0)"}"#) }
        + [chunk(finish: "stop"), usageChunk()], done: done)
}

/// Scales every default duration of the client by `factor`, keeping the default counts, so a
/// test can check what the defaults promise in a fraction of the time.
func scaledDefaults(_ factor: Double, baseURL: String) -> OpenAIClient.Configuration {
    let d = OpenAIClient.Configuration()
    var c = d
    c.baseURL = baseURL
    c.model = "qwen-test"
    c.requestTimeout = d.requestTimeout * factor
    c.stallTimeout = d.stallTimeout * factor
    c.connectTimeout = d.connectTimeout * factor
    c.backoffBase = d.backoffBase * factor
    c.backoffMax = d.backoffMax * factor
    c.retryAfterCap = d.retryAfterCap * factor
    return c
}

/// `response` without the fields that differ between calls (latency, attempts).
func logical(_ response: ModelResponse) -> ModelResponse {
    var copy = response
    copy.latencyMs = 0
    copy.attempts = 1
    return copy
}

@Suite("Server-sent event parsing")
struct ServerSentEventParserTests {
    private func parse(_ pieces: [String]) -> [String] {
        var parser = ServerSentEventParser()
        var found: [ServerSentEvent] = []
        for piece in pieces { parser.feed(Array(piece.utf8), into: &found) }
        return found.map(\.text)
    }

    @Test func lineEndings() {
        #expect(parse(["data: a\n\ndata: b\n\n"]) == ["a", "b"])
        #expect(parse(["data: a\r\n\r\ndata: b\r\n\r\n"]) == ["a", "b"])
        #expect(parse(["data: a\r\rdata: b\r\r"]) == ["a", "b"])
        // A CRLF split between two reads is one line ending, not two (which would end the event early).
        #expect(parse(["data: a\r", "\ndata: b\r\n\r", "\n"]) == ["a\nb"])
    }

    @Test func multiLineDataCommentsAndFields() {
        #expect(parse(["data: one\ndata: two\ndata\ndata:three\n\n"]) == ["one\ntwo\n\nthree"])
        #expect(parse([": keep-alive\n\n: ping\n\n"]) == [])
        #expect(parse([": ping\ndata: x\nid: 7\nretry: 100\nbogus: y\n\n"]) == ["x"])
        #expect(parse(["data:  two spaces\n\n"]) == [" two spaces"])
        #expect(parse(["\u{FEFF}data: bom\n\n"]) == ["bom"])
        #expect(parse(["event: ping\n\n"]) == [])
        var parser = ServerSentEventParser()
        var found: [ServerSentEvent] = []
        parser.feed(Array("event: error\ndata: {}\n\ndata: m\n\n".utf8), into: &found)
        #expect(found.map(\.name) == ["error", "message"])
    }

    @Test func incompleteEventIsNotEmitted() {
        #expect(parse(["data: a\n\ndata: b\n"]) == ["a"])
        #expect(parse(["data: a\n\ndata: {\"cho"]) == ["a"])
    }

    @Test func byteByByteEqualsWhole() {
        let text = "data: {\"a\": 1}\r\n\r\n: c\n\ndata: x\rdata: y\r\r" + streamedHello().joined()
        let whole = parse([text])
        #expect(whole.count == 9)
        #expect(parse(text.unicodeScalars.map { String($0) }) == whole)
    }
}

@Suite("OpenAIClient streaming against a loopback server")
struct StreamingTests {
    @Test func streamedEqualsNonStreamed() async throws {
        let toolCalls = #"""
        , "tool_calls": [
          {"id": "call_a", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}},
          {"type": "function", "function": {"name": "submit", "arguments": "{\"path\":\"p.diff\"}"}}]
        """#
        let logprobs = #", "logprobs": {"content": [{"token": "Hel", "logprob": -0.25}, {"token": "lo", "logprob": -1.5}]}"#
        let whole = completion(finishReason: "tool_calls", extraMessage: #", "reasoning_content": "thinking hard""# + toolCalls,
                               extraChoice: logprobs)
        let streamed = events([
            chunk(delta: #"{"role": "assistant", "content": ""}"#),
            chunk(delta: #"{"reasoning_content": "think"}"#),
            chunk(delta: #"{"reasoning_content": "ing hard"}"#),
            chunk(delta: #"{"content": "Hel"}"#, extraChoice: #", "logprobs": {"content": [{"token": "Hel", "logprob": -0.25}]}"#)
                .replacingOccurrences(of: #""logprobs": null, "#, with: ""),
            chunk(delta: #"{"content": "lo there."}"#, extraChoice: #", "logprobs": {"content": [{"token": "lo", "logprob": -1.5}]}"#)
                .replacingOccurrences(of: #""logprobs": null, "#, with: ""),
            chunk(delta: #"{"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "bash", "arguments": ""}}]}"#),
            chunk(delta: #"{"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\": "}}]}"#),
            chunk(delta: #"{"tool_calls": [{"index": 1, "type": "function", "function": {"name": "submit", "arguments": "{\"path\""}}]}"#),
            chunk(delta: #"{"tool_calls": [{"index": 0, "function": {"arguments": "\"ls\"}"}}]}"#),
            chunk(delta: #"{"tool_calls": [{"index": 1, "function": {"arguments": ":\"p.diff\"}"}}]}"#),
            chunk(finish: "tool_calls"),
            usageChunk(),
        ])
        var nonStreamed: ModelResponse?
        try await withServer([.json(whole)], configure: { $0.stream = false; $0.logprobs = true }) { server, client in
            nonStreamed = try await client.complete(hello)
            #expect(server.requests.first?.json["stream"] as? Bool == false)
            #expect(server.requests.first?.json["stream_options"] == nil)
            #expect(server.requests.first?.headers["accept"] == "application/json")
        }
        try await withServer([.events(streamed)], configure: { $0.logprobs = true }) { server, client in
            let response = try await client.complete(hello)
            let expected = try #require(nonStreamed)
            #expect(logical(response) == logical(expected))
            #expect(response.toolCalls.count == 2)
            #expect(response.reasoning == "thinking hard")
            #expect(response.logprobs?.count == 2)
            #expect(response.promptTokens == 12)
            let recorded = try #require(server.requests.first)
            #expect(recorded.json["stream"] as? Bool == true)
            #expect((recorded.json["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            #expect(recorded.headers["accept"] == "text/event-stream")
        }
    }

    @Test func usageOnlyInTheLastChunkAndReasoningField() async throws {
        let streamed = events([
            chunk(delta: #"{"role": "assistant", "reasoning": "a"}"#, model: "policy-v1"),
            chunk(delta: #"{"reasoning": "b", "content": null}"#, model: "policy-v1"),
            chunk(delta: #"{"content": "done"}"#, model: "policy-v1"),
            chunk(finish: "length", model: "policy-v1"),
            usageChunk(prompt: 1000, completion: 77, model: "policy-v1"),
        ], newline: "\r\n")
        try await withServer([.events(streamed)]) { _, client in
            let response = try await client.complete(hello)
            #expect(response.content == "done")
            #expect(response.reasoning == "ab")
            #expect(response.finishReason == "length")
            #expect(response.model == "policy-v1")
            #expect(response.promptTokens == 1000)
            #expect(response.completionTokens == 77)
            #expect(response.logprobs == nil)
            #expect(response.attempts == 1)
        }
    }

    /// vLLM with `return_token_ids`: the prompt's ids in the first chunk, each chunk's ids on its
    /// choice. A checkpoint pushed mid-call shows as a different `model` in the later chunks.
    @Test func streamedTokenIDsAndPolicyVersions() async throws {
        let streamed = events([
            #"{"id": "c", "model": "policy-7", "prompt_token_ids": [1, 2, 3], "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "token_ids": []}]}"#,
            chunk(delta: #"{"content": "Hel"}"#, model: "policy-7", extraChoice: #", "token_ids": [9906]"#),
            chunk(delta: #"{"content": "lo"}"#, model: "policy-8", extraChoice: #", "token_ids": [385, 13]"#),
            chunk(finish: "stop", model: "policy-8"),
            usageChunk(prompt: 3, completion: 3, model: "policy-8"),
        ])
        try await withServer([.events(streamed)]) { _, client in
            let response = try await client.complete(hello)
            #expect(response.content == "Hello")
            #expect(response.promptTokenIDs == [1, 2, 3])
            #expect(response.completionTokenIDs == [9906, 385, 13])
            #expect(response.policyVersionAtStart == "policy-7")
            #expect(response.policyVersionAtEnd == "policy-8")
            #expect(response.model == "policy-8")
        }
    }

    @Test func stallIsRetriedAtOnceAndCostsOneStallTimeout() async throws {
        // The back-off is long so that waiting it after the stall would show.
        try await withServer([.stall, .events(streamedHello())], configure: {
            $0.stallTimeout = 0.3
            $0.backoffBase = 5
            $0.backoffMax = 5
        }) { server, client in
            let start = ContinuousClock.now
            let response = try await client.complete(hello)
            let elapsed = seconds(since: start)
            #expect(response.content == "Hello there.")
            #expect(response.attempts == 2)
            #expect(elapsed >= 0.29)
            #expect(elapsed < 0.3 + 0.4)
            #expect(server.requests.count == 2)
        }
    }

    @Test(arguments: [true, false])
    func dribbledReplyIsAStall(stream: Bool) async throws {
        // A byte every 20 ms: no complete event (or reply) within the 0.3 s stall timeout,
        // though bytes keep arriving.
        let body = stream ? streamedHello().joined() : completion()
        let dribble = LoopbackServer.Reply.dribble(
            body.map(String.init), interval: .milliseconds(20), contentType: stream ? "text/event-stream" : "application/json"
        )
        let answer: LoopbackServer.Reply = stream ? .events(streamedHello()) : .json(completion())
        try await withServer([dribble, answer], configure: { $0.stallTimeout = 0.3; $0.stream = stream }) { _, client in
            let start = ContinuousClock.now
            let response = try await client.complete(hello)
            let elapsed = seconds(since: start)
            #expect(response.content == "Hello there.")
            #expect(response.attempts == 2)
            #expect(elapsed < 0.3 + 0.4)
        }
    }

    @Test func keepAliveCommentsAreNotProgress() async throws {
        let pings = LoopbackServer.Reply.dribble(Array(repeating: ": ping\n\n", count: 200), interval: .milliseconds(20))
        try await withServer([pings, .events(streamedHello())], configure: { $0.stallTimeout = 0.3 }) { _, client in
            let start = ContinuousClock.now
            let response = try await client.complete(hello)
            #expect(response.attempts == 2)
            #expect(seconds(since: start) < 0.3 + 0.4)
        }
    }

    @Test func steadyEventsAreNotAStall() async throws {
        // Events 100 ms apart, 1 s in all, against a 0.3 s stall timeout.
        let slow = LoopbackServer.Reply.dribble(streamedHello(Array(repeating: "ab", count: 6)), interval: .milliseconds(100))
        try await withServer([slow], configure: { $0.stallTimeout = 0.3 }) { _, client in
            let response = try await client.complete(hello)
            #expect(response.content == String(repeating: "ab", count: 6))
            #expect(response.attempts == 1)
        }
    }

    /// With every default count and every default duration scaled down 200 times, a server that
    /// never answers or dribbles fails the turn in under 240 s / 200 with the cause named.
    @Test(arguments: ["stall", "dribble"])
    func deadServerFailsWithinTheScaledBound(kind: String) async throws {
        let factor = 1.0 / 200
        let reply: LoopbackServer.Reply = kind == "stall"
            ? .stall
            // A byte per (1 s x factor): 1 byte/s at full scale.
            : .dribble(streamedHello().joined().map(String.init), interval: .milliseconds(5))
        let server = try await LoopbackServer.start(Array(repeating: reply, count: 10))
        let start = ContinuousClock.now
        try await OpenAIClient.withClient(scaledDefaults(factor, baseURL: server.baseURL)) { client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .unavailable)
            #expect(error?.message.contains("stall timeout") == true)
            #expect(error?.message.contains("3 stalled") == true)
        }
        let elapsed = seconds(since: start)
        #expect(elapsed < 240 * factor)
        #expect(elapsed >= 3 * 60 * factor * 0.95)
        #expect(server.requests.count == 3)
        await server.stop()
    }

    @Test func streamCutMidEventIsRetried() async throws {
        let cut = LoopbackServer.Reply.cut(streamedHello().prefix(2).joined() + #"data: {"id": "chatcmpl-1", "choi"#)
        try await withServer([cut, .events(streamedHello())]) { server, client in
            let response = try await client.complete(hello)
            #expect(response.content == "Hello there.")
            #expect(response.attempts == 2)
            #expect(server.requests.count == 2)
        }
    }

    @Test func streamWithoutDoneIsAcceptedOnceFinished() async throws {
        try await withServer([.events(streamedHello(done: false))]) { _, client in
            let response = try await client.complete(hello)
            #expect(response.content == "Hello there.")
            #expect(response.finishReason == "stop")
            #expect(response.completionTokens == 3)
            #expect(response.attempts == 1)
        }
        // Ended cleanly, but before a finish_reason or [DONE]: incomplete, retried, then reported.
        let unfinished = LoopbackServer.Reply.events(events([chunk(delta: #"{"content": "Hel"}"#)], done: false))
        try await withServer([unfinished, unfinished], configure: { $0.maxRetries = 1 }) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .invalidResponse)
            #expect(error?.message.contains("before the reply was complete") == true)
            #expect(server.requests.count == 2)
        }
    }

    @Test func errorInTheStreamIsRetried() async throws {
        let failing = LoopbackServer.Reply.events(events([
            chunk(delta: #"{"content": "Hel"}"#), #"{"error": {"message": "engine overloaded", "code": 500}}"#,
        ]))
        try await withServer([failing, .events(streamedHello())]) { _, client in
            let response = try await client.complete(hello)
            #expect(response.attempts == 2)
            #expect(response.content == "Hello there.")
        }
        try await withServer([failing, failing], configure: { $0.maxRetries = 1 }) { _, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .invalidResponse)
            #expect(error?.message.contains("engine overloaded") == true)
        }
    }

    @Test func streamedErrorStatusIsClassified() async throws {
        let limited = LoopbackServer.Reply.json(#"{"error": {"message": "slow down"}}"#, status: 429, headers: ["Retry-After": "0"])
        let tooLong = LoopbackServer.Reply.json(#"{"error": {"message": "maximum context length is 4096 tokens"}}"#, status: 400)
        try await withServer([limited, tooLong]) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .contextLength)
            #expect(server.requests.count == 2)
        }
    }
}
