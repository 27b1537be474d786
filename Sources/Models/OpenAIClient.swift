import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WardenCore

/// A client for OpenAI-compatible chat completions: vLLM, SGLang, the llama.cpp server and
/// hosted APIs.
///
/// Replies are streamed (server-sent events) unless `stream` is off. Every turn has a
/// wall-clock cap (`requestTimeout`) and every attempt a stall cap (`stallTimeout`): an attempt
/// that receives no complete event for that long is abandoned, so a server that accepts and
/// never answers, or dribbles bytes, cannot hold a call. A stall is retried at once (it has
/// waited already), at most `maxStalls` times per turn; 429, 5xx, connection errors and unusable
/// 2xx replies are retried with exponential back-off and jitter, honouring `Retry-After`.
/// Other 4xx are final. Cancelling the calling task cancels the request in flight.
///
/// The client owns one `HTTPClient` on the shared event loop group: call ``shutdown()`` when
/// done, or use ``withClient(_:isolation:_:)``. A client released without it shuts its
/// `HTTPClient` down in the background rather than tripping AsyncHTTPClient's debug check.
public final class OpenAIClient: ModelClient {
    public let configuration: Configuration
    /// The model and the server's host, e.g. `openai:qwen3-8b@127.0.0.1:8000`. No key, no path.
    public let name: String

    private let endpoint: String
    private let http: HTTPClient
    private let isShutDown = Mutex(false)

    /// Creates a client; throws `WardenError` (`model.config`) for a base URL that is not
    /// http(s) or for non-positive timeouts.
    public init(configuration: Configuration) throws {
        var base = configuration.baseURL.trimmingWhitespace()
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else {
            throw WardenError(
                "model.config", "the base URL must be an http(s) URL such as http://127.0.0.1:8000/v1",
                context: "baseURL"
            )
        }
        guard configuration.requestTimeout > 0, configuration.stallTimeout > 0, configuration.connectTimeout > 0 else {
            throw WardenError("model.config", "timeouts must be positive", context: "requestTimeout/stallTimeout")
        }
        guard configuration.maxRetries >= 0, configuration.maxStalls >= 1 else {
            throw WardenError("model.config", "maxRetries must be >= 0 and maxStalls >= 1", context: "maxRetries/maxStalls")
        }
        self.configuration = configuration
        self.endpoint = base + "/chat/completions"
        self.name = "openai:\(configuration.model)@\(host)" + (url.port.map { ":\($0)" } ?? "")

        var http = HTTPClient.Configuration()
        // No read timeout: the attempt's watchdog bounds the time between complete events (and
        // a whole reply's wait). AsyncHTTPClient's would re-arm a timer for every body part.
        http.timeout = .init(connect: Self.timeAmount(configuration.connectTimeout))
        // A redirected POST would drop its body or, worse, send the key elsewhere.
        http.redirectConfiguration = .disallow
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }

    /// Shuts down the HTTP client; calls in flight fail. Later calls do nothing.
    public func shutdown() async throws {
        let first = isShutDown.withLock { done in
            defer { done = true }
            return !done
        }
        if first { try await http.shutdown() }
    }

    deinit {
        if !isShutDown.withLock({ $0 }) {
            http.shutdown { _ in }
        }
    }

    /// Runs `body` with a new client and shuts the client down afterwards, whatever happens.
    public static func withClient<T>(
        _ configuration: Configuration,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (OpenAIClient) async throws -> T
    ) async throws -> T {
        let client = try OpenAIClient(configuration: configuration)
        let result: Result<T, any Error>
        do {
            result = .success(try await body(client))
        } catch {
            result = .failure(error)
        }
        try await client.shutdown()
        return try result.get()
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .seconds(configuration.requestTimeout)
        let body: Data
        do {
            body = try OpenAIWire.encode(OpenAIWire.requestBody(request, configuration: configuration))
        } catch {
            throw ModelError(.rejected, "could not encode the request: \(error)")
        }

        var attempts = 0, stalls = 0
        while true {
            if Task.isCancelled { throw ModelError(.cancelled, "the turn was cancelled") }
            attempts += 1
            let outcome = await attempt(body: body, deadline: deadline)
            let problem: Problem
            switch outcome {
            case var .success(response):
                response.latencyMs = Self.milliseconds(clock.now - start)
                response.attempts = attempts
                return response
            case let .fatal(error):
                throw ModelError(error.kind, redact(error.message))
            case let .retry(retryable):
                problem = retryable
            }

            if problem.stalled { stalls += 1 }
            let tried = (attempts == 1 ? "1 attempt" : "\(attempts) attempts") + (stalls > 0 ? ", \(stalls) stalled" : "")
            if attempts > configuration.maxRetries || stalls >= configuration.maxStalls {
                if problem.invalidResponse {
                    throw ModelError(.invalidResponse, redact("\(problem.message) (after \(tried))"))
                }
                throw ModelError(.unavailable, redact("gave up after \(tried); last problem: \(problem.message)"))
            }
            // A stall has waited a whole stall timeout already: retry at once.
            let wait = problem.stalled ? 0 : problem.retryAfter
                ?? Backoff.delay(retry: attempts, base: configuration.backoffBase, max: configuration.backoffMax)
            if clock.now + .seconds(wait) >= deadline {
                throw ModelError(
                    .unavailable,
                    redact("no answer within the request timeout of \(Self.seconds(configuration.requestTimeout)) "
                        + "(\(tried)); last problem: \(problem.message)")
                )
            }
            if wait > 0 {
                do {
                    try await Task.sleep(for: .seconds(wait))
                } catch {
                    throw ModelError(.cancelled, "the turn was cancelled")
                }
            }
        }
    }

    // MARK: - One attempt

    /// Why an attempt failed in a way worth retrying.
    struct Problem {
        var message: String
        var retryAfter: Double?
        /// The server answered 2xx with something unusable: reported as `.invalidResponse`.
        var invalidResponse = false
        /// No complete event within the stall timeout: retried at once, counted against `maxStalls`.
        var stalled = false
    }

    enum Outcome {
        case success(ModelResponse)
        case retry(Problem)
        case fatal(ModelError)
    }

    private struct TurnTimeout: Error {}
    private struct Stalled: Error {}

    /// A whole (non-streamed or error) reply.
    private struct Reply: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: Data
    }

    private enum Received: Sendable {
        case whole(Reply)
        case stream(Result<ModelResponse, OpenAIWire.InvalidResponse>)
    }

    /// When the attempt last received a complete event (or began), shared with its watchdog.
    private final class LastEvent: Sendable {
        private let instant = Mutex(ContinuousClock.now)
        var value: ContinuousClock.Instant { instant.withLock { $0 } }
        func mark() { instant.withLock { $0 = .now } }
    }

    private func attempt(body: Data, deadline: ContinuousClock.Instant) async -> Outcome {
        let received: Received
        let lastEvent = LastEvent()
        let stall = Duration.seconds(configuration.stallTimeout)
        do {
            received = try await withThrowingTaskGroup(of: Received.self) { group in
                group.addTask { try await self.send(body, deadline: deadline, lastEvent: lastEvent) }
                // The watchdog: the stall timeout between complete events, and the turn's cap.
                group.addTask {
                    while true {
                        try await Task.sleep(until: min(lastEvent.value + stall, deadline), clock: .continuous)
                        let now = ContinuousClock.now
                        if now >= deadline { throw TurnTimeout() }
                        if lastEvent.value + stall <= now { throw Stalled() }
                    }
                }
                defer { group.cancelAll() }
                guard let first = try await group.next() else { throw TurnTimeout() }
                return first
            }
        } catch {
            return classify(transport: error)
        }
        switch received {
        case let .whole(reply):
            return classify(reply)
        case let .stream(.success(response)):
            return .success(response)
        case let .stream(.failure(invalid)):
            return .retry(Problem(message: "invalid response: \(invalid.problem)", invalidResponse: true))
        }
    }

    private func send(_ body: Data, deadline: ContinuousClock.Instant, lastEvent: LastEvent) async throws -> Received {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: configuration.stream ? "text/event-stream" : "application/json")
        headers.add(name: "User-Agent", value: "warden")
        if let key = configuration.apiKey, !key.isEmpty {
            headers.add(name: "Authorization", value: "Bearer \(key)")
        }
        let request = try HTTPClient.Request(
            url: endpoint, method: .POST, headers: headers, body: .byteBuffer(ByteBuffer(bytes: body))
        )
        let remaining = ContinuousClock.now.duration(to: deadline)
        let eventLoop = http.eventLoopGroup.any()
        let delegate = AttemptDelegate(
            streaming: configuration.stream, maxResponseBytes: configuration.maxResponseBytes,
            lastEvent: lastEvent, promise: eventLoop.makePromise()
        )
        let task = http.execute(
            request: request, delegate: delegate, eventLoop: .delegate(on: eventLoop),
            deadline: .now() + .nanoseconds(Self.nanoseconds(remaining) + 1_000_000_000)
        )
        return try await withTaskCancellationHandler {
            try await delegate.result.get()
        } onCancel: {
            task.cancel()
        }
    }

    /// Receives one attempt's response on its event loop. An event stream is parsed and
    /// assembled as each body part arrives, with no hop to the caller per part (that hop cost
    /// more than the parsing); any other body is collected whole. The result is delivered at
    /// `[DONE]`, at a chunk that cannot be read, or at the body's end. After `[DONE]` the rest
    /// of the body (normally just its terminator) is still read, so the connection is kept.
    private final class AttemptDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
        typealias Response = Void

        // Touched only on the event loop the request runs on (delegate callbacks included).
        private let streaming: Bool
        private let maxResponseBytes: Int
        private let lastEvent: LastEvent
        private let promise: EventLoopPromise<Received>
        private var status = 0
        private var headers: [(String, String)] = []
        private var isEventStream = false
        private var body = ByteBuffer()
        private var size = 0
        private var stream = ChatEventStream()
        private var delivered = false

        init(streaming: Bool, maxResponseBytes: Int, lastEvent: LastEvent, promise: EventLoopPromise<Received>) {
            self.streaming = streaming
            self.maxResponseBytes = maxResponseBytes
            self.lastEvent = lastEvent
            self.promise = promise
        }

        var result: EventLoopFuture<Received> { promise.futureResult }

        func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
            status = Int(head.status.code)
            headers = head.headers.map { ($0.name, $0.value) }
            // Errors come as JSON even from streaming servers, and a server may ignore `stream`.
            isEventStream = streaming && (200..<300).contains(status)
                && head.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") == true
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
            size += buffer.readableBytes
            if size > maxResponseBytes {
                deliver(.failure(TooLarge()))
                task.fail(reason: TooLarge())
                return task.eventLoop.makeSucceededVoidFuture()
            }
            guard !delivered else { return task.eventLoop.makeSucceededVoidFuture() }
            guard isEventStream else {
                var part = buffer
                body.writeBuffer(&part)
                return task.eventLoop.makeSucceededVoidFuture()
            }
            let fed = buffer.withUnsafeReadableBytes { bytes in stream.feed(bytes) }
            if fed.completedEvent { lastEvent.mark() }
            if let unreadable = fed.unreadable {
                deliver(.success(.stream(.failure(unreadable))))
                // The rest of this body is of no use, nor is its connection.
                task.cancel()
            } else if stream.done {
                deliver(.success(.stream(Result { () throws(OpenAIWire.InvalidResponse) in try stream.response() })))
            }
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
            deliver(.failure(error))
        }

        func didFinishRequest(task: HTTPClient.Task<Void>) throws {
            if isEventStream {
                deliver(.success(.stream(Result { () throws(OpenAIWire.InvalidResponse) in try stream.response() })))
            } else {
                deliver(.success(.whole(Reply(status: status, headers: headers, body: Data(body.readableBytesView)))))
            }
        }

        private func deliver(_ result: Result<Received, any Error>) {
            guard !delivered else { return }
            delivered = true
            promise.completeWith(result)
        }
    }

    private struct TooLarge: Error {}

    private func classify(_ reply: Reply) -> Outcome {
        let status = reply.status
        switch status {
        case 200..<300:
            do {
                return .success(try OpenAIWire.parseResponse(reply.body))
            } catch {
                return .retry(Problem(message: "invalid response: \(error.problem)", invalidResponse: true))
            }
        case 408, 409, 425, 429, 500..<600:
            return .retry(Problem(
                message: "HTTP \(status): \(OpenAIWire.excerpt(reply.body))",
                retryAfter: Backoff.retryAfter(headers: reply.headers, cap: configuration.retryAfterCap)
            ))
        default:
            if OpenAIWire.isContextLengthError(status: status, body: reply.body) {
                return .fatal(ModelError(.contextLength, "HTTP \(status): \(OpenAIWire.excerpt(reply.body))"))
            }
            return .fatal(ModelError(.rejected, "HTTP \(status): \(OpenAIWire.excerpt(reply.body))"))
        }
    }

    private func classify(transport error: any Error) -> Outcome {
        if Task.isCancelled || error is CancellationError {
            return .fatal(ModelError(.cancelled, "the turn was cancelled"))
        }
        if error is TurnTimeout {
            return .fatal(ModelError(
                .unavailable, "no answer within the request timeout of \(Self.seconds(configuration.requestTimeout))"
            ))
        }
        if error is Stalled { return .retry(stalledProblem) }
        if error is TooLarge {
            return .retry(Problem(
                message: "invalid response: the body is larger than \(configuration.maxResponseBytes) bytes",
                invalidResponse: true
            ))
        }
        if let http = error as? HTTPClientError {
            switch http {
            case .connectTimeout:
                return .retry(Problem(
                    message: "could not connect within \(Self.seconds(configuration.connectTimeout))"
                ))
            case .deadlineExceeded:
                return .fatal(ModelError(
                    .unavailable, "no answer within the request timeout of \(Self.seconds(configuration.requestTimeout))"
                ))
            case .cancelled:
                return .fatal(ModelError(.cancelled, "the turn was cancelled"))
            case .alreadyShutdown:
                return .fatal(ModelError(.unavailable, "the client was shut down"))
            default:
                return .retry(Problem(message: "connection error: \(http)"))
            }
        }
        return .retry(Problem(message: "connection error: \(error)"))
    }

    private var stalledProblem: Problem {
        Problem(
            message: "no complete \(configuration.stream ? "event" : "reply") from the server for "
                + "\(Self.seconds(configuration.stallTimeout)) (stall timeout)",
            stalled: true
        )
    }

    // MARK: - Helpers

    /// Removes the API key from text that might echo it (some servers quote the key they refuse).
    private func redact(_ text: String) -> String {
        guard let key = configuration.apiKey, key.count >= 4 else { return text }
        return text.replacingOccurrences(of: key, with: "<redacted>")
    }

    static func timeAmount(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(0, seconds) * 1_000_000_000 + max(0, attoseconds / 1_000_000_000)
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}
