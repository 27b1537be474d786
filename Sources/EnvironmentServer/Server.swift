import Agent
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import WardenCore

/// `warden serve`: an environment server RL trainers drive, step by step (OpenEnv's HTTP and
/// WebSocket surface) or by whole rollouts against their own inference server.
public struct EnvironmentServer: Sendable {
    public var registry: EpisodeRegistry
    public var host: String
    public var port: Int
    /// Required as `Authorization: Bearer TOKEN` on every route but /health; nil only with
    /// `--insecure-local`, because the server runs commands.
    public var token: String?
    public var logger: Logger

    public init(registry: EpisodeRegistry, host: String = "127.0.0.1", port: Int = 8000, token: String?,
                logger: Logger = Logger(label: "warden.serve")) {
        self.registry = registry
        self.host = host
        self.port = port
        self.token = token
        self.logger = logger
    }

    /// Serves until SIGTERM or SIGINT, then drains: no new episodes, every live one closed with
    /// its trajectory finished. `onRunning` gets the bound port (for `--port 0`).
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.middlewares.add(BearerTokenMiddleware(token: token))
        let routes = Routes(registry: registry, logger: logger)
        routes.register(on: router)
        let reaper = IdleReaper(registry: registry, interval: max(1, min(60, registry.settings.idleSeconds / 4)))
        var app = Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router, configuration: .init(maxFrameSize: 64 << 20)),
            configuration: .init(address: .hostname(host, port: port), serverName: "warden"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
        app.addServices(reaper)
        // Services shut down in reverse order: the server stops taking connections first, then
        // the reaper drains the live episodes.
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}

/// Refuses every request but /health without the bearer token.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token, request.uri.path != "/health" else { return try await next(request, context) }
        let expected = "Bearer \(token)"
        guard let given = request.headers[.authorization], constantTimeEqual(given, expected) else {
            throw HTTPError(.unauthorized, message: "a bearer token is required: Authorization: Bearer TOKEN")
        }
        return try await next(request, context)
    }

    private func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Closes idle episodes periodically; at shutdown, drains the registry.
struct IdleReaper: Service {
    let registry: EpisodeRegistry
    let interval: Double

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) } catch { break }
                await registry.reapIdle()
            }
        }
        await registry.drain()
    }
}

/// A JSON body built from `JSONValue`, with a status.
struct JSONResponse: ResponseGenerator {
    var status: HTTPResponse.Status = .ok
    var body: JSONValue

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(body)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

struct Routes: Sendable {
    let registry: EpisodeRegistry
    let logger: Logger

    func register(on router: Router<BasicWebSocketRequestContext>) {
        router.get("/health") { _, _ in JSONResponse(body: .object(["status": .string("healthy")])) }
        router.get("/metadata") { _, _ in JSONResponse(body: metadata()) }
        router.get("/schema") { _, _ in JSONResponse(body: Schema.document) }
        router.post("/reset") { request, context in try await http { try await reset(request, context) } }
        router.post("/step") { request, context in try await http { try await step(request, context) } }
        router.get("/state") { request, _ in
            try await http {
                guard let id = request.uri.queryParameters["episode_id"].map(String.init) else {
                    throw ServerError(.validationError, "GET /state needs ?episode_id=ID")
                }
                return try await registry.state(id)
            }
        }
        router.post("/close") { request, context in
            try await http {
                let reference = try await decode(EpisodeReference.self, request, context)
                await registry.close(reference.episodeID)
                return .object(["episode_id": .string(reference.episodeID), "closed": .bool(true)])
            }
        }
        router.post("/fork") { request, context in
            try await http {
                let fork = try await decode(ForkRequest.self, request, context)
                let (id, episode) = try await registry.fork(fork.episodeID, at: fork.step, newID: fork.newEpisodeID)
                return .object([
                    "episode_id": .string(id), "parent": .string(fork.episodeID), "step": .number(Double(fork.step)),
                    "messages": .array(await episode.messages.map(\.openAIValue)),
                ])
            }
        }
        router.post("/v1/rollouts") { request, context in
            try await http {
                let rollout = try await decode(RolloutRequest.self, request, context)
                return try await Rollouts(registry: registry).run(rollout)
            }
        }
        router.ws("/ws") { _, _ in .upgrade([:]) } onUpgrade: { inbound, outbound, _ in
            let session = WebSocketSession(registry: registry, logger: logger)
            await session.serve(inbound.messages(maxSize: 64 << 20)) { text in try await outbound.write(.text(text)) }
        }
    }

    private func metadata() -> JSONValue {
        .object([
            "name": .string("warden"),
            "description": .string("Software-engineering tasks in a jailed checkout: the model's bash, edit, create and submit actions run in "
                + "Linux namespaces under seccomp; the submission is scored by the repository's own tests."),
            "version": .string(registry.settings.wardenVersion),
            "tasks": .array(registry.settings.tasks.keys.sorted().map { .string($0) }),
            "max_concurrent_envs": .number(Double(registry.settings.maxEpisodes)),
            "session_timeout": .number(registry.settings.idleSeconds),
            "reward": .string(registry.settings.rewards.rawValue),
        ])
    }

    private func reset(_ request: Request, _ context: BasicWebSocketRequestContext) async throws -> JSONValue {
        let reset = try await decode(ResetRequest.self, request, context)
        let (id, episode, opening) = try await registry.open(reset)
        return Payload.opening(episodeID: id, taskID: reset.taskID, messages: opening, tools: await episode.tools)
    }

    private func step(_ request: Request, _ context: BasicWebSocketRequestContext) async throws -> JSONValue {
        let step = try await decode(HTTPStepRequest.self, request, context)
        guard let id = step.episodeID ?? step.action.episodeID else {
            throw ServerError(.validationError, "POST /step needs episode_id (from the reset's observation)")
        }
        return Payload.step(episodeID: id, try await registry.step(id, step.action))
    }

    private func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: BasicWebSocketRequestContext) async throws -> T {
        let data = Data(buffer: try await request.body.collect(upTo: 64 << 20))
        return try decodeJSON(T.self, data)
    }

    /// Runs a handler, answering a ServerError with its HTTP status and OpenEnv's code.
    private func http(_ body: () async throws -> JSONValue) async throws -> JSONResponse {
        do {
            return JSONResponse(body: try await body())
        } catch let error as ServerError {
            let status: HTTPResponse.Status = switch error.code {
            case .invalidJSON, .validationError, .unknownType: .unprocessableContent
            case .capacityReached: .serviceUnavailable
            case .sessionError: .notFound
            case .executionError, .factoryError: .internalServerError
            }
            return JSONResponse(status: status, body: .object(["detail": error.data]))
        }
    }
}

/// `T` from a JSON body: text that is not JSON is INVALID_JSON, JSON of the wrong shape is a
/// VALIDATION_ERROR naming the field.
func decodeJSON<T: Decodable>(_ type: T.Type, _ data: Data) throws(ServerError) -> T {
    do { return try JSONDecoder().decode(T.self, from: data) } catch let error as DecodingError {
        if case let .dataCorrupted(context) = error, context.codingPath.isEmpty {
            throw ServerError(.invalidJSON, "Invalid JSON: \(context.underlyingError.map { "\($0)" } ?? context.debugDescription)")
        }
        throw ServerError(.validationError, describe(error))
    } catch {
        throw ServerError(.invalidJSON, "Invalid JSON: \(error)")
    }
}

/// A readable account of why a JSON body does not decode: which field, and what was wrong.
func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        return keys.isEmpty ? "the body" : keys.joined(separator: ".")
    }
    switch error {
    case let .keyNotFound(key, context): return "\(path(context)): missing field \(key.stringValue)"
    case let .typeMismatch(_, context), let .valueNotFound(_, context): return "\(path(context)): \(context.debugDescription)"
    case let .dataCorrupted(context): return "\(path(context)): \(context.debugDescription)"
    @unknown default: return "\(error)"
    }
}

/// One WebSocket connection: at most one live episode, as in OpenEnv, closed when the
/// connection closes.
actor WebSocketSession {
    let registry: EpisodeRegistry
    let logger: Logger
    private var episodeID: String?

    init(registry: EpisodeRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    func serve(_ messages: WebSocketInboundMessageStream, send: @Sendable (String) async throws -> Void) async {
        do {
            for try await message in messages {
                guard case let .text(text) = message else {
                    try await send(reply(.error, ServerError(.invalidJSON, "messages are JSON text frames").data))
                    continue
                }
                let (reply, closing) = await handle(text)
                if let reply { try await send(reply) }
                if closing { break }
            }
        } catch {
            logger.debug("websocket ended", metadata: ["error": "\(error)"])
        }
        if let episodeID { await registry.close(episodeID) }
    }

    private enum Kind: String { case observation, state, error }

    private func reply(_ kind: Kind, _ data: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let value = JSONValue.object(["type": .string(kind.rawValue), "data": data])
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
            ?? #"{"type":"error","data":{"message":"the reply could not be encoded","code":"EXECUTION_ERROR"}}"#
    }

    /// The reply to one message, and whether the connection ends.
    private func handle(_ text: String) async -> (String?, Bool) {
        struct Envelope: Decodable { var type: String }
        do {
            let envelope = try decodeJSON(Envelope.self, Data(text.utf8))
            switch envelope.type {
            case "reset":
                let request = try decodeData(ResetRequest.self, text)
                if let previous = episodeID { await registry.close(previous); episodeID = nil }
                let (id, episode, opening) = try await registry.open(request)
                episodeID = id
                return (reply(.observation, Payload.opening(episodeID: id, taskID: request.taskID, messages: opening, tools: await episode.tools)), false)
            case "step":
                guard let id = episodeID else { throw ServerError(.sessionError, "step before reset") }
                let action = try decodeData(StepAction.self, text)
                return (reply(.observation, Payload.step(episodeID: id, try await registry.step(id, action))), false)
            case "state":
                guard let id = episodeID else { return (reply(.state, .object(["episode_id": .null, "step_count": .number(0)])), false) }
                return (reply(.state, try await registry.state(id)), false)
            case "close":
                return (nil, true)
            default:
                throw ServerError(.unknownType, "Unknown message type: \(envelope.type)")
            }
        } catch let error as ServerError {
            return (reply(.error, error.data), false)
        } catch {
            return (reply(.error, ServerError(.executionError, "\(error)").data), false)
        }
    }

    /// The message's `data` decoded straight from its text as `T` (absent data is `{}`).
    private func decodeData<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try decodeJSON(TypedMessage<T>.self, Data(text.utf8)).data
    }
}

/// A WebSocket message's `data` as `T`; absent data decodes as `{}`.
struct TypedMessage<T: Decodable>: Decodable {
    var data: T
    enum CodingKeys: String, CodingKey { case data }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        data = try container.decodeIfPresent(T.self, forKey: .data) ?? JSONDecoder().decode(T.self, from: Data("{}".utf8))
    }
}
