import Foundation
import Testing
import WardenCore
@testable import Models

/// A canned chat-completions body.
func completion(
    content: String? = "Hello there.", finishReason: String = "stop", model: String = "qwen-test",
    prompt: Int = 12, completion: Int = 3, extraMessage: String = "", extraChoice: String = ""
) -> String {
    let text = content.map { "\"\($0)\"" } ?? "null"
    return """
    {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "\(model)",
     "choices": [{"index": 0, "message": {"role": "assistant", "content": \(text)\(extraMessage)},
                  "finish_reason": "\(finishReason)"\(extraChoice)}],
     "usage": {"prompt_tokens": \(prompt), "completion_tokens": \(completion), "total_tokens": \(prompt + completion)}}
    """
}

let secretKey = "sk-test-SECRET-0123456789"

/// Runs `body` against a loopback server with `script` and a client with small timeouts and
/// back-offs; shuts both down afterwards.
func withServer(
    _ script: [LoopbackServer.Reply],
    configure: (inout OpenAIClient.Configuration) -> Void = { _ in },
    _ body: (LoopbackServer, OpenAIClient) async throws -> Void
) async throws {
    let server = try await LoopbackServer.start(script)
    var configuration = OpenAIClient.Configuration(
        baseURL: server.baseURL, model: "qwen-test", apiKey: secretKey,
        requestTimeout: 10, stallTimeout: 2, connectTimeout: 2,
        maxRetries: 3, backoffBase: 0.01, backoffMax: 0.05
    )
    configure(&configuration)
    let client = try OpenAIClient(configuration: configuration)
    do {
        try await body(server, client)
    } catch {
        try await client.shutdown()
        await server.stop()
        throw error
    }
    try await client.shutdown()
    await server.stop()
}

let hello = ModelRequest(messages: [ChatMessage(role: .user, content: "Say hello.")])

/// Awaits `operation` and returns the `ModelError` it throws (failing the test if it succeeds).
func modelError(_ operation: () async throws -> ModelResponse) async -> ModelError? {
    do {
        let response = try await operation()
        Issue.record("expected an error, got \(response)")
        return nil
    } catch let error as ModelError {
        return error
    } catch {
        Issue.record("expected a ModelError, got \(error)")
        return nil
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let (s, atto) = (ContinuousClock.now - start).components
    return Double(s) + Double(atto) / 1e18
}

@Suite("OpenAIClient against a loopback server")
struct OpenAIClientTests {
    @Test func normalReply() async throws {
        try await withServer([.json(completion(extraMessage: ##", "reasoning_content": "thinking""##))]) { server, client in
            let response = try await client.complete(hello)
            #expect(response.content == "Hello there.")
            #expect(response.reasoning == "thinking")
            #expect(response.finishReason == "stop")
            #expect(response.model == "qwen-test")
            #expect(response.promptTokens == 12)
            #expect(response.completionTokens == 3)
            #expect(response.attempts == 1)
            #expect(response.latencyMs > 0)
            #expect(response.toolCalls.isEmpty)
            #expect(response.logprobs == nil)
            #expect(server.requests.count == 1)
        }
    }

    @Test func toolCallsReply() async throws {
        let calls = #"""
        , "tool_calls": [
          {"id": "call_a", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}},
          {"type": "function", "function": {"name": "submit", "arguments": {"path": "p.diff"}}}]
        """#
        try await withServer([.json(completion(content: nil, finishReason: "tool_calls", extraMessage: calls))]) { _, client in
            let response = try await client.complete(hello)
            #expect(response.content == "")
            #expect(response.finishReason == "tool_calls")
            #expect(response.toolCalls.count == 2)
            #expect(response.toolCalls.first == ToolCall(id: "call_a", name: "bash", arguments: #"{"command": "ls"}"#))
            #expect(response.toolCalls.last == ToolCall(id: "call_1", name: "submit", arguments: #"{"path":"p.diff"}"#))
        }
    }

    @Test func requestBodyAndHeaders() async throws {
        let request = ModelRequest(
            messages: [
                ChatMessage(role: .system, content: "You are careful."),
                ChatMessage(role: .user, content: "Fix it."),
                ChatMessage(role: .assistant, content: "",
                            toolCalls: [ToolCall(id: "c1", name: "bash", arguments: #"{"command":"ls"}"#)]),
                ChatMessage(role: .tool, content: "a.py\n", toolCallID: "c1", name: "bash"),
            ],
            tools: [ToolSchema(
                name: "bash", description: "Run a command.",
                parameters: .object(["type": .string("object"),
                                     "properties": .object(["command": .object(["type": .string("string")])])])
            )],
            maxTokens: 50
        )
        try await withServer([.json(completion())], configure: {
            $0.temperature = 0.7
            $0.topP = 0.95
            $0.maxTokens = 100
            $0.seed = 42
            $0.stop = ["</tool>", "STOP"]
            $0.extraBody = ["top_k": .number(20), "chat_template_kwargs": .object(["enable_thinking": .bool(false)])]
        }) { server, client in
            _ = try await client.complete(request)
            let recorded = try #require(server.requests.first)
            #expect(recorded.method == "POST")
            #expect(recorded.uri == "/v1/chat/completions")
            #expect(recorded.headers["authorization"] == "Bearer \(secretKey)")
            #expect(recorded.headers["content-type"] == "application/json")
            // Integers must go out as JSON integers, not 50.0.
            #expect(recorded.bodyText.contains(#""max_tokens":50"#))
            #expect(recorded.bodyText.contains(#""seed":42"#))
            let body = recorded.json
            #expect(body["model"] as? String == "qwen-test")
            #expect(body["temperature"] as? Double == 0.7)
            #expect(body["top_p"] as? Double == 0.95)
            #expect(body["stop"] as? [String] == ["</tool>", "STOP"])
            #expect(body["top_k"] as? Int == 20)
            #expect((body["chat_template_kwargs"] as? [String: Any])?["enable_thinking"] as? Bool == false)
            #expect(body["logprobs"] == nil)
            #expect(body["stream"] as? Bool == true)

            let messages = try #require(body["messages"] as? [[String: Any]])
            #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "tool"])
            #expect(messages[1]["content"] as? String == "Fix it.")
            let call = try #require((messages[2]["tool_calls"] as? [[String: Any]])?.first)
            #expect(call["id"] as? String == "c1")
            #expect(call["type"] as? String == "function")
            let function = try #require(call["function"] as? [String: Any])
            #expect(function["name"] as? String == "bash")
            #expect(function["arguments"] as? String == #"{"command":"ls"}"#)
            #expect(messages[3]["tool_call_id"] as? String == "c1")
            #expect(messages[3]["name"] as? String == "bash")
            #expect(messages[3]["content"] as? String == "a.py\n")
            #expect(messages[1]["tool_calls"] == nil)

            let tools = try #require(body["tools"] as? [[String: Any]])
            #expect(tools.count == 1)
            #expect(tools[0]["type"] as? String == "function")
            let schema = try #require(tools[0]["function"] as? [String: Any])
            #expect(schema["name"] as? String == "bash")
            #expect(schema["description"] as? String == "Run a command.")
            #expect((schema["parameters"] as? [String: Any])?["type"] as? String == "object")
        }
    }

    @Test func configMaxTokensAndNoToolsOrKey() async throws {
        try await withServer([.json(completion())], configure: { $0.maxTokens = 100; $0.apiKey = nil }) { server, client in
            _ = try await client.complete(hello)
            let recorded = try #require(server.requests.first)
            #expect(recorded.json["max_tokens"] as? Int == 100)
            #expect(recorded.json["tools"] == nil)
            #expect(recorded.json["seed"] == nil)
            #expect(recorded.headers["authorization"] == nil)
        }
    }

    @Test func rateLimitHonoursRetryAfter() async throws {
        let limited = LoopbackServer.Reply.json(#"{"error": {"message": "slow down"}}"#, status: 429, headers: ["Retry-After": "1"])
        try await withServer([limited, .json(completion())]) { server, client in
            let start = ContinuousClock.now
            let response = try await client.complete(hello)
            let elapsed = seconds(since: start)
            #expect(response.attempts == 2)
            #expect(server.requests.count == 2)
            let gap = server.requests[0].at.duration(to: server.requests[1].at)
            #expect(gap >= .milliseconds(950))
            #expect(elapsed < 3)
            #expect(response.latencyMs >= 950)
        }
    }

    @Test func serverErrorsThenSuccess() async throws {
        let failure = LoopbackServer.Reply.json(#"{"error": {"message": "overloaded"}}"#, status: 503)
        try await withServer([failure, .json("oops", status: 500), .json(completion())]) { server, client in
            let response = try await client.complete(hello)
            #expect(response.attempts == 3)
            #expect(response.content == "Hello there.")
            #expect(server.requests.count == 3)
        }
    }

    @Test func serverErrorsPastTheBudget() async throws {
        let failure = LoopbackServer.Reply.json(#"{"error": {"message": "engine dead"}}"#, status: 500)
        try await withServer([failure, failure, failure, failure], configure: { $0.maxRetries = 2 }) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .unavailable)
            #expect(error?.message.contains("3 attempts") == true)
            #expect(error?.message.contains("HTTP 500: engine dead") == true)
            #expect(server.requests.count == 3)
        }
    }

    @Test func stalledResponseIsRetried() async throws {
        try await withServer([.stall, .json(completion())], configure: { $0.stallTimeout = 0.5 }) { server, client in
            let start = ContinuousClock.now
            let response = try await client.complete(hello)
            let elapsed = seconds(since: start)
            #expect(response.attempts == 2)
            #expect(elapsed >= 0.45)
            #expect(elapsed < 2.5)
            #expect(server.requests.count == 2)
        }
    }

    @Test func responseStoppingMidBodyIsRetried() async throws {
        try await withServer([.partial(body: #"{"choices": [{"mess"#), .json(completion())],
                             configure: { $0.stallTimeout = 0.5 }) { _, client in
            let start = ContinuousClock.now
            let response = try await client.complete(hello)
            #expect(response.attempts == 2)
            #expect(seconds(since: start) < 2.5)
        }
    }

    @Test func stallsPastTheBudget() async throws {
        try await withServer([.stall, .stall, .stall], configure: {
            $0.stallTimeout = 0.4
            $0.maxRetries = 1
        }) { server, client in
            let start = ContinuousClock.now
            let error = await modelError { try await client.complete(hello) }
            let elapsed = seconds(since: start)
            #expect(error?.kind == .unavailable)
            #expect(error?.message.contains("stall timeout") == true)
            #expect(elapsed >= 0.75)
            #expect(elapsed < 2.5)
            #expect(server.requests.count == 2)
        }
    }

    @Test func requestTimeoutCapsTheTurn() async throws {
        try await withServer([.stall, .stall], configure: {
            $0.requestTimeout = 0.8
            $0.stallTimeout = 30
        }) { _, client in
            let start = ContinuousClock.now
            let error = await modelError { try await client.complete(hello) }
            let elapsed = seconds(since: start)
            #expect(error?.kind == .unavailable)
            #expect(error?.message.contains("request timeout") == true)
            #expect(elapsed >= 0.75)
            #expect(elapsed < 2)
        }
    }

    @Test func closedConnectionIsRetried() async throws {
        try await withServer([.close, .json(completion())]) { _, client in
            let response = try await client.complete(hello)
            #expect(response.attempts == 2)
        }
    }

    @Test func refusedConnectionEndsUnavailable() async throws {
        // Learn a free port, then stop listening on it.
        let server = try await LoopbackServer.start([])
        let url = server.baseURL
        await server.stop()
        // The pool keeps retrying a refused connection until the connect timeout, so keep it short.
        let configuration = OpenAIClient.Configuration(
            baseURL: url, connectTimeout: 0.3, maxRetries: 2, backoffBase: 0.01, backoffMax: 0.02
        )
        let start = ContinuousClock.now
        try await OpenAIClient.withClient(configuration) { client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .unavailable)
            #expect(error?.message.contains("connection error") == true)
        }
        #expect(seconds(since: start) < 3)
    }

    @Test func malformedJSON() async throws {
        try await withServer([.json("{not json"), .json("<html>502</html>")], configure: { $0.maxRetries = 1 }) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .invalidResponse)
            #expect(error?.message.contains("not valid JSON") == true)
            #expect(server.requests.count == 2)
        }
        try await withServer([.json("{not json"), .json(completion())]) { _, client in
            let response = try await client.complete(hello)
            #expect(response.attempts == 2)
        }
    }

    @Test func emptyChoices() async throws {
        let empty = LoopbackServer.Reply.json(#"{"model": "m", "choices": []}"#)
        try await withServer([empty, empty], configure: { $0.maxRetries = 1 }) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .invalidResponse)
            #expect(error?.message.contains("empty") == true)
            #expect(server.requests.count == 2)
        }
    }

    @Test(arguments: [
        // vLLM
        #"{"object": "error", "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).", "type": "BadRequestError", "param": null, "code": 400}"#,
        // OpenAI
        #"{"error": {"message": "Your input exceeds the context window of this model.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}"#,
        // llama.cpp server
        #"{"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error"}}"#,
        // SGLang
        #"{"object": "error", "message": "The input (9000 tokens) is longer than the model's context length (8192 tokens).", "code": 400}"#,
    ])
    func contextLengthIsNotRetried(body: String) async throws {
        try await withServer([.json(body, status: 400), .json(completion())]) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .contextLength)
            #expect(error?.message.contains("HTTP 400") == true)
            #expect(server.requests.count == 1)
        }
    }

    @Test func unauthorizedIsRejectedWithoutRetries() async throws {
        // The server quotes the key back, as some do; it must not reach the error.
        let body = #"{"error": {"message": "Incorrect API key provided: \#(secretKey)", "type": "invalid_request_error"}}"#
        try await withServer([.json(body, status: 401), .json(completion())]) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .rejected)
            #expect(error?.message.contains("HTTP 401") == true)
            #expect(error?.message.contains("Incorrect API key") == true)
            #expect(error.map { "\($0)" }?.contains(secretKey) == false)
            #expect(error.map { "\($0)" }?.contains("SECRET") == false)
            #expect(server.requests.count == 1)
        }
        try await withServer([.json(#"{"error": {"message": "bad request: unknown field"}}"#, status: 400)]) { server, client in
            let error = await modelError { try await client.complete(hello) }
            #expect(error?.kind == .rejected)
            #expect(server.requests.count == 1)
        }
    }

    @Test func logprobsParsed() async throws {
        let logprobs = #"""
        , "logprobs": {"content": [{"token": "Hello", "logprob": -0.25, "bytes": [72], "top_logprobs": []},
                                   {"token": " there.", "logprob": -1.5, "top_logprobs": []}]}
        """#
        try await withServer([.json(completion(extraChoice: logprobs))], configure: { $0.logprobs = true }) { server, client in
            let response = try await client.complete(hello)
            #expect(response.logprobs == [TokenLogprob(token: "Hello", logprob: -0.25),
                                          TokenLogprob(token: " there.", logprob: -1.5)])
            let body = try #require(server.requests.first).json
            #expect(body["logprobs"] as? Bool == true)
            #expect(body["top_logprobs"] as? Int == 0)
        }
    }

    @Test func apiKeyNeverLeaks() async throws {
        try await withServer([.json(completion()), .json("nope", status: 403)]) { server, client in
            #expect(!client.name.contains(secretKey))
            #expect(client.name == "openai:qwen-test@127.0.0.1:\(server.port)")
            let response = try await client.complete(hello)
            let encoded = String(decoding: try JSONEncoder().encode(response), as: UTF8.self)
            #expect(!encoded.contains(secretKey))
            let error = await modelError { try await client.complete(hello) }
            #expect(error.map { "\($0)" }?.contains(secretKey) == false)
            #expect(error.map { String(reflecting: $0) }?.contains(secretKey) == false)
        }
    }

    @Test func cancellationStopsAStalledCall() async throws {
        try await withServer([.stall], configure: { $0.stallTimeout = 30; $0.requestTimeout = 60 }) { server, client in
            let start = ContinuousClock.now
            let task = Task { try await client.complete(hello) }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            let result = await task.result
            let elapsed = seconds(since: start)
            switch result {
            case .success:
                Issue.record("a cancelled call returned a response")
            case let .failure(error as ModelError):
                #expect(error.kind == .cancelled)
            case let .failure(error):
                #expect(error is CancellationError)
            }
            #expect(elapsed < 1.5)
            #expect(server.requests.count == 1)
        }
    }

    @Test func cancellationDuringBackoff() async throws {
        let limited = LoopbackServer.Reply.json("{}", status: 429, headers: ["Retry-After": "30"])
        try await withServer([limited], configure: { $0.requestTimeout = 60 }) { _, client in
            let start = ContinuousClock.now
            let task = Task { try await client.complete(hello) }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            let result = await task.result
            if case let .failure(error as ModelError) = result {
                #expect(error.kind == .cancelled)
            } else {
                Issue.record("expected a cancelled ModelError, got \(result)")
            }
            #expect(seconds(since: start) < 1.5)
        }
    }
}

@Suite("OpenAIClient configuration and parsing")
struct OpenAIConfigurationTests {
    @Test func shutdownIsIdempotentAndOptional() async throws {
        let client = try OpenAIClient(configuration: .init())
        try await client.shutdown()
        try await client.shutdown()
        // Released without shutdown(): must not trap in debug builds.
        _ = try OpenAIClient(configuration: .init())
        try await Task.sleep(for: .milliseconds(50))
    }

    @Test func configurationNeverShowsTheKey() throws {
        let configuration = OpenAIClient.Configuration(model: "m", apiKey: secretKey, seed: 7, extraBody: ["top_k": .number(5)])
        #expect(!"\(configuration)".contains(secretKey))
        #expect(!String(reflecting: configuration).contains(secretKey))
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains(secretKey))
        #expect(dumped.contains("<redacted>"))

        let encoded = try JSONEncoder().encode(configuration)
        #expect(!String(decoding: encoded, as: UTF8.self).contains(secretKey))
        let decoded = try JSONDecoder().decode(OpenAIClient.Configuration.self, from: encoded)
        #expect(decoded.apiKey == nil)
        #expect(decoded.seed == 7)
        #expect(decoded.model == "m")
        #expect(decoded.extraBody == ["top_k": .number(5)])
        let partial = try JSONDecoder().decode(OpenAIClient.Configuration.self, from: Data(#"{"model": "x"}"#.utf8))
        #expect(partial.model == "x")
        #expect(partial.maxRetries == OpenAIClient.Configuration().maxRetries)
        #expect(partial.stream)
        #expect(partial.stallTimeout == 60)
        var unstreamed = configuration
        unstreamed.stream = false
        unstreamed.maxStalls = 2
        let roundTrip = try JSONDecoder().decode(OpenAIClient.Configuration.self, from: JSONEncoder().encode(unstreamed))
        #expect(!roundTrip.stream)
        #expect(roundTrip.maxStalls == 2)
    }

    @Test func apiKeyFromEnvironment() {
        typealias C = OpenAIClient.Configuration
        #expect(C.apiKey(from: ["WARDEN_API_KEY": "w", "OPENAI_API_KEY": "o"]) == "w")
        #expect(C.apiKey(from: ["WARDEN_API_KEY": "  ", "OPENAI_API_KEY": "o"]) == "o")
        #expect(C.apiKey(from: ["OPENAI_API_KEY": "o\n"]) == "o")
        #expect(C.apiKey(from: ["HOME": "/root"]) == nil)
    }

    @Test func invalidBaseURL() {
        #expect(throws: WardenError.self) { try OpenAIClient(configuration: .init(baseURL: "localhost:8000")) }
        #expect(throws: WardenError.self) { try OpenAIClient(configuration: .init(baseURL: "ftp://host/v1")) }
        #expect(throws: WardenError.self) { try OpenAIClient(configuration: .init(stallTimeout: 0)) }
    }

    @Test func nameHidesCredentialsInTheURL() async throws {
        try await OpenAIClient.withClient(.init(baseURL: "https://user:pw@api.example.com/v1/", model: "gpt-x", apiKey: secretKey)) { client in
            #expect(client.name == "openai:gpt-x@api.example.com")
        }
    }

    @Test func retryAfterForms() throws {
        let now = try #require(Backoff.httpDate("Wed, 21 Oct 2015 07:28:00 GMT"))
        #expect(Backoff.retryAfter(headers: [("Retry-After", "3")], now: now, cap: 60) == 3)
        #expect(Backoff.retryAfter(headers: [("retry-after", "Wed, 21 Oct 2015 07:28:10 GMT")], now: now, cap: 60) == 10)
        #expect(Backoff.retryAfter(headers: [("Retry-After", "Wed, 21 Oct 2015 07:27:00 GMT")], now: now, cap: 60) == 0)
        #expect(Backoff.retryAfter(headers: [("Retry-After", "3600")], now: now, cap: 60) == 60)
        #expect(Backoff.retryAfter(headers: [("Retry-After", "soon")], now: now, cap: 60) == nil)
        #expect(Backoff.retryAfter(headers: [("retry-after-ms", "250"), ("Retry-After", "1")], now: now, cap: 60) == 0.25)
        #expect(Backoff.retryAfter(headers: [], now: now, cap: 60) == nil)
    }

    @Test func backoffGrowsAndIsCapped() {
        #expect(Backoff.delay(retry: 1, base: 1, max: 60, random: 1) == 1)
        #expect(Backoff.delay(retry: 3, base: 1, max: 60, random: 1) == 4)
        #expect(Backoff.delay(retry: 10, base: 1, max: 60, random: 1) == 60)
        #expect(Backoff.delay(retry: 3, base: 1, max: 60, random: 0.5) == 2)
        for _ in 0..<20 {
            let d = Backoff.delay(retry: 2, base: 1, max: 60)
            #expect(d >= 1 && d <= 2)
        }
    }

    @Test func contentAsParts() throws {
        let body = #"{"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]}"#
        let response = try OpenAIWire.parseResponse(Data(body.utf8))
        #expect(response.content == "ab")
    }
}

