import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 server on 127.0.0.1 that answers with scripted replies in order and records
/// every request it receives.
final class LoopbackServer: Sendable {
    enum Reply: Sendable {
        /// A complete response.
        case respond(status: Int, body: String, headers: [String: String])
        /// Read the request, never answer.
        case stall
        /// Send the head and part of the body (announcing more), then go silent.
        case partial(body: String)
        /// Close the connection without answering.
        case close
        /// A `text/event-stream` reply, each string written and flushed as its own chunk.
        case events([String])
        /// A `text/event-stream` reply: each string written as its own chunk, `interval` apart.
        case dribble([String], interval: Duration, contentType: String = "text/event-stream")
        /// A `text/event-stream` reply that sends `text` and then closes the connection
        /// without ending the chunked body.
        case cut(String)

        static func json(_ body: String, status: Int = 200, headers: [String: String] = [:]) -> Reply {
            .respond(status: status, body: body, headers: headers)
        }
    }

    struct Recorded: Sendable {
        var method: String
        var uri: String
        var headers: [String: String]
        var body: Data
        var at: ContinuousClock.Instant

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        }

        var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    private struct State {
        var script: [Reply]
        var requests: [Recorded] = []
        var channels: [any Channel] = []
    }

    private let state: Mutex<State>
    private let serverChannel: Mutex<(any Channel)?> = Mutex(nil)

    private init(script: [Reply]) {
        state = Mutex(State(script: script))
    }

    var port: Int {
        serverChannel.withLock { $0?.localAddress?.port ?? 0 }
    }

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    var requests: [Recorded] { state.withLock { $0.requests } }

    /// Connections accepted so far.
    var connections: Int { state.withLock { $0.channels.count } }

    static func start(_ script: [Reply]) async throws -> LoopbackServer {
        let server = LoopbackServer(script: script)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                server.state.withLock { $0.channels.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.serverChannel.withLock { $0 = channel }
        return server
    }

    /// Closes the listening socket and every connection, stalled ones included.
    func stop() async {
        let channels = state.withLock { $0.channels }
        for channel in channels { try? await channel.close() }
        if let channel = serverChannel.withLock({ $0 }) { try? await channel.close() }
    }

    fileprivate func received(_ request: Recorded) -> Reply {
        state.withLock { state in
            state.requests.append(request)
            if state.script.isEmpty {
                return .json(#"{"error": {"message": "script exhausted"}}"#, status: 599)
            }
            return state.script.removeFirst()
        }
    }
}

private final class Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: LoopbackServer
    var head: HTTPRequestHead?
    var body = ByteBuffer()

    init(server: LoopbackServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            self.head = head
            body.clear()
        case var .body(part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            let reply = server.received(.init(
                method: head.method.rawValue, uri: head.uri, headers: headers,
                body: Data(body.readableBytesView), at: .now
            ))
            answer(reply, context: context)
        }
    }

    private func answer(_ reply: LoopbackServer.Reply, context: ChannelHandlerContext) {
        switch reply {
        case let .respond(status, text, extra):
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: "\(text.utf8.count)")
            for (name, value) in extra { headers.add(name: name, value: value) }
            let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .stall:
            break
        case let .partial(text):
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: "\(text.utf8.count + 1000)")
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        case .close:
            context.close(promise: nil)
        case let .events(chunks):
            writeStreamHead(context: context, contentType: "text/event-stream")
            for chunk in chunks {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: chunk)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case let .dribble(chunks, interval, contentType):
            writeStreamHead(context: context, contentType: contentType)
            context.flush()
            Self.dribble(chunks[...], channel: context.channel, interval: .nanoseconds(Int64(interval / .nanoseconds(1))))
        case let .cut(text):
            writeStreamHead(context: context, contentType: "text/event-stream")
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.close(promise: nil)
        }
    }

    /// A head without Content-Length, so the body goes out chunked.
    private func writeStreamHead(context: ChannelHandlerContext, contentType: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Cache-Control", value: "no-cache")
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    /// Writes the chunks one per `interval` through the channel (from its event loop) until
    /// they run out or the client goes away.
    private static func dribble(_ chunks: ArraySlice<String>, channel: any Channel, interval: TimeAmount) {
        channel.eventLoop.scheduleTask(in: interval) {
            guard channel.isActive else { return }
            guard let first = chunks.first else {
                channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
                return
            }
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: first))), promise: nil)
            dribble(chunks.dropFirst(), channel: channel, interval: interval)
        }
    }
}
