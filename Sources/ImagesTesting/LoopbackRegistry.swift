import Foundation
import Images
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A container registry on 127.0.0.1 speaking the parts of the OCI distribution API a pull
/// uses: `/v2/<name>/manifests/<reference>` and `/v2/<name>/blobs/<digest>`, behind bearer-token
/// authentication (`/token`, which wants basic credentials), like Docker Hub's.
public final class LoopbackRegistry: Sendable {
    public struct Image: Sendable {
        public var repository: String
        public var tag: String
        /// The amd64 manifest, served inside a manifest list that also names an arm64 one.
        public var manifest: Data
        public var blobs: [Digest: Data]

        public init(repository: String, tag: String, manifest: Data, blobs: [Digest: Data]) {
            self.repository = repository
            self.tag = tag
            self.manifest = manifest
            self.blobs = blobs
        }
    }

    public let credentials: (user: String, password: String)
    private let token = "token-\(UUID().uuidString)"
    private let images: Mutex<[Image]> = Mutex([])
    /// Paths requested, in order (counted to show that concurrent pulls download once).
    public let requests = Mutex<[String]>([])
    private let channel: Mutex<(any Channel)?> = Mutex(nil)

    init(credentials: (String, String) = ("puller", "s3cret")) {
        self.credentials = credentials
    }

    public var port: Int { channel.withLock { $0?.localAddress?.port ?? 0 } }
    public var host: String { "127.0.0.1:\(port)" }

    public func add(_ image: Image) { images.withLock { $0.append(image) } }

    public static func start() async throws -> LoopbackRegistry {
        let registry = LoopbackRegistry()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(RegistryHandler(registry: registry))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        registry.channel.withLock { $0 = channel }
        return registry
    }

    public func stop() async {
        if let channel = channel.withLock({ $0 }) { try? await channel.close() }
    }

    /// Writes a docker config file holding the registry's credentials.
    public func dockerConfig(in directory: URL, password: String? = nil) throws -> URL {
        let auth = Data("\(credentials.user):\(password ?? credentials.password)".utf8).base64EncodedString()
        let file = directory.appendingPathComponent("docker-config-\(UUID().uuidString.prefix(6)).json")
        try JSONSerialization.data(withJSONObject: ["auths": [host: ["auth": auth]]]).write(to: file)
        return file
    }

    fileprivate func answer(_ uri: String, headers: HTTPHeaders) -> (HTTPResponseStatus, [(String, String)], Data) {
        requests.withLock { $0.append(uri) }
        let path = uri.split(separator: "?").first.map(String.init) ?? uri
        if path == "/token" {
            let expected = "Basic " + Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
            guard headers.first(name: "authorization") == expected, uri.contains("scope=repository") else {
                return (.unauthorized, [], Data(#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.utf8))
            }
            return (.ok, [("Content-Type", "application/json")], Data(#"{"token":"\#(token)"}"#.utf8))
        }
        guard headers.first(name: "authorization") == "Bearer " + token else {
            let challenge = #"Bearer realm="http://\#(host)/token",service="loopback",scope="repository:x:pull""#
            return (.unauthorized, [("WWW-Authenticate", challenge)], Data(#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.utf8))
        }
        let parts = path.split(separator: "/").map(String.init)  // v2, name..., kind, reference
        guard parts.count >= 4, parts[0] == "v2" else { return (.notFound, [], Data()) }
        let repository = parts[1..<(parts.count - 2)].joined(separator: "/"), kind = parts[parts.count - 2], reference = parts[parts.count - 1]
        guard let image = images.withLock({ $0.first { $0.repository == repository } }) else {
            return (.notFound, [], Data(#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#.utf8))
        }
        let manifestDigest = Digest.of(image.manifest)
        let list = (try? JSONSerialization.data(withJSONObject: [
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                ["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + String(repeating: "a", count: 64), "size": 10,
                 "platform": ["architecture": "arm64", "os": "linux"]],
                ["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest.description, "size": image.manifest.count,
                 "platform": ["architecture": "amd64", "os": "linux"]],
            ],
        ] as [String: Any])) ?? Data()
        switch kind {
        case "manifests" where reference == image.tag:
            return (.ok, [("Content-Type", "application/vnd.docker.distribution.manifest.list.v2+json")], list)
        case "manifests" where reference == manifestDigest.description:
            return (.ok, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")], image.manifest)
        case "blobs":
            guard let digest = try? Digest(reference), let blob = image.blobs[digest] else { return (.notFound, [], Data()) }
            return (.ok, [("Content-Type", "application/octet-stream")], blob)
        default:
            return (.notFound, [], Data(#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.utf8))
        }
    }
}

private final class RegistryHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: LoopbackRegistry
    var head: HTTPRequestHead?

    init(registry: LoopbackRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let (status, extra, body) = registry.answer(head.uri, headers: head.headers)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "\(body.count)")
            for (name, value) in extra { headers.add(name: name, value: value) }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
