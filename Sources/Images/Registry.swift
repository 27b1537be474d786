import Foundation
import Models
import Synchronization
import WardenCore

/// How registries are reached.
public struct RegistryConfiguration: Sendable, Hashable {
    /// Registry host (as in image names: `docker.io`, `ghcr.io`, `localhost:5000`) to the base
    /// URL to use instead (`https://mirror.example.com`, `http://127.0.0.1:5000`).
    public var mirrors: [String: String]
    /// The docker config file with credentials (`auths.<host>.auth`, base64 of `user:password`).
    public var dockerConfig: URL?

    public init(mirrors: [String: String] = [:], dockerConfig: URL? = RegistryConfiguration.defaultDockerConfig) {
        self.mirrors = mirrors
        self.dockerConfig = dockerConfig
    }

    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    public static var defaultDockerConfig: URL? {
        if let directory = ProcessInfo.processInfo.environment["DOCKER_CONFIG"], !directory.isEmpty {
            return URL(fileURLWithPath: directory).appendingPathComponent("config.json")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".docker/config.json")
    }

    /// `WARDEN_REGISTRY_MIRROR`, if set, is `host=url[,host=url...]`, or a bare URL for Docker Hub.
    public static func fromEnvironment() throws -> RegistryConfiguration {
        var configuration = RegistryConfiguration()
        guard let text = ProcessInfo.processInfo.environment["WARDEN_REGISTRY_MIRROR"], !text.isEmpty else { return configuration }
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 1 { configuration.mirrors["docker.io"] = parts[0] } else { configuration.mirrors[parts[0]] = parts[1] }
        }
        for url in configuration.mirrors.values where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw WardenError("image.mirror", "a mirror must be an http(s) URL, not \"\(url)\"", context: "WARDEN_REGISTRY_MIRROR")
        }
        return configuration
    }

    /// The registry's base URL: a mirror, Docker Hub's API host, plain HTTP for loopback.
    func baseURL(_ registry: String) -> String {
        if let mirror = mirrors[registry] { return mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror }
        if registry == "docker.io" { return "https://registry-1.docker.io" }
        let host = registry.split(separator: ":").first.map(String.init) ?? registry
        return (host == "localhost" || host == "127.0.0.1" ? "http://" : "https://") + registry
    }

    /// `user:password` for the registry from the docker config file, base64-encoded.
    func credentials(_ registry: String) throws -> String? {
        guard let file = dockerConfig, FileManager.default.fileExists(atPath: file.path) else { return nil }
        struct Config: Decodable {
            struct Auth: Decodable { var auth: String? }
            var auths: [String: Auth]?
        }
        let config = try decodeJSON(Config.self, try Data(contentsOf: file), what: "the docker config", context: file.path)
        let keys = registry == "docker.io" ? ["https://index.docker.io/v1/", "docker.io", "index.docker.io"] : [registry, "https://" + registry]
        return keys.lazy.compactMap { config.auths?[$0]?.auth }.first
    }
}

/// An image in a registry, read through the OCI distribution API: manifest lists resolved to
/// linux/amd64, bearer-token (or basic) authentication from the registry's challenge, layers
/// downloaded once into the store's blobs and checked against their digests.
struct RegistrySource: ImageSource {
    var reference: ImageReference
    var configuration: RegistryConfiguration
    private let session = RegistrySession()

    init(reference: ImageReference, configuration: RegistryConfiguration) {
        self.reference = reference
        self.configuration = configuration
    }

    var name: String { reference.description }

    private var repositoryURL: String { configuration.baseURL(reference.registry) + "/v2/" + reference.repository }

    static let manifestTypes = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest].joined(separator: ", ")

    func resolve() async throws -> ResolvedImage {
        let fetcher = HTTPFetcher()
        defer { Task { try await fetcher.shutdown() } }
        var (data, type) = try await manifest(reference.manifestReference, fetcher: fetcher)
        if let pinned = reference.digest { try pinned.verify(data, context: name) }
        if MediaType.isIndex(type) {
            let index = try decodeJSON(ImageIndex.self, data, what: "the manifest list", context: name)
            let chosen = try index.linuxAMD64(context: name)
            (data, type) = try await manifest(chosen.digest.description, fetcher: fetcher)
            try chosen.digest.verify(data, context: name)
        }
        let manifest = try decodeJSON(ImageManifest.self, data, what: "the manifest", context: name)
        let raw = try await send(repositoryURL + "/blobs/" + manifest.config.digest.description, accept: nil, fetcher: fetcher).body
        try manifest.config.digest.verify(raw, context: name + " config")
        return ResolvedImage(id: manifest.config.digest, configuration: try ImageConfiguration.parse(raw, context: name),
                             rawConfiguration: raw, layers: manifest.layers)
    }

    func fetch(_ layer: Descriptor, index: Int, of image: ResolvedImage, blobs: URL) async throws -> LayerBlob {
        let directory = blobs.appendingPathComponent("sha256")
        let file = directory.appendingPathComponent(layer.digest.hex)
        let blob = LayerBlob(location: BlobLocation(path: file.path), expected: layer.digest, name: "\(name) layer \(layer.digest)")
        if FileManager.default.fileExists(atPath: file.path) { return blob }  // renamed in only once verified
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let partial = directory.appendingPathComponent(".partial-\(layer.digest.hex)-\(getpid())")
        let fetcher = HTTPFetcher()
        defer { Task { try await fetcher.shutdown() } }
        let url = repositoryURL + "/blobs/" + layer.digest.description
        var response = try await fetcher.download(url, headers: try await authorization(fetcher: fetcher), to: partial)
        if response.status == 401 {
            try await authenticate(response, fetcher: fetcher)
            response = try await fetcher.download(url, headers: try await authorization(fetcher: fetcher), to: partial)
        }
        guard response.status == 200 else { throw failure(response, what: "layer \(layer.digest)") }
        let hashing = HashingSource(try FileRegion(path: partial.path))
        let actual = try hashing.drainAndFinish()
        guard actual == layer.digest else {
            unlink(partial.path)
            throw WardenError("image.digest", "the downloaded layer has digest \(actual), expected \(layer.digest)", context: name)
        }
        guard rename(partial.path, file.path) == 0 else {
            throw WardenError("image.store", "cannot keep the layer: \(String(cString: strerror(errno)))", context: file.path)
        }
        return blob
    }

    private func manifest(_ reference: String, fetcher: HTTPFetcher) async throws -> (Data, String?) {
        let response = try await send(repositoryURL + "/manifests/" + reference, accept: Self.manifestTypes, fetcher: fetcher)
        let type = response.headers["content-type"]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        struct Probe: Decodable { var mediaType: String?; var manifests: [Descriptor]? }
        let probe = try decodeJSON(Probe.self, response.body, what: "the manifest", context: name)
        return (response.body, probe.mediaType ?? (probe.manifests != nil ? MediaType.ociIndex : type))
    }

    /// GET with authentication: a 401 is answered once by the challenge it carries.
    private func send(_ url: String, accept: String?, fetcher: HTTPFetcher) async throws -> HTTPFetcher.Response {
        var headers = try await authorization(fetcher: fetcher)
        if let accept { headers["Accept"] = accept }
        var response = try await fetcher.get(url, headers: headers, limit: 64 << 20)
        if response.status == 401 {
            try await authenticate(response, fetcher: fetcher)
            headers.merge(try await authorization(fetcher: fetcher)) { $1 }
            response = try await fetcher.get(url, headers: headers, limit: 64 << 20)
        }
        guard response.status == 200 else { throw failure(response, what: url.hasSuffix(reference.manifestReference) ? "the manifest" : url) }
        return response
    }

    private func authorization(fetcher: HTTPFetcher) async throws -> [String: String] {
        session.authorization.withLock { $0 }.map { ["Authorization": $0] } ?? [:]
    }

    /// Answers a `WWW-Authenticate` challenge: a bearer token from the realm (with the docker
    /// config's credentials when there are some), or basic credentials.
    private func authenticate(_ response: HTTPFetcher.Response, fetcher: HTTPFetcher) async throws {
        let challenge = response.headers["www-authenticate"] ?? ""
        let credentials = try configuration.credentials(reference.registry)
        if challenge.lowercased().hasPrefix("basic") {
            guard let credentials else { throw failure(response, what: "access (the registry wants credentials; add them to the docker config)") }
            session.authorization.withLock { $0 = "Basic " + credentials }
            return
        }
        guard challenge.lowercased().hasPrefix("bearer") else { throw failure(response, what: "access (unknown challenge \"\(challenge)\")") }
        let parameters = Self.challengeParameters(String(challenge.dropFirst(6)))
        guard let realm = parameters["realm"], var components = URLComponents(string: realm) else {
            throw failure(response, what: "access (a bearer challenge without a realm)")
        }
        var query = components.queryItems ?? []
        if let service = parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: parameters["scope"] ?? "repository:\(reference.repository):pull"))
        components.queryItems = query
        guard let url = components.string else { throw failure(response, what: "access (an unreadable realm \(realm))") }
        let answer = try await fetcher.get(url, headers: credentials.map { ["Authorization": "Basic " + $0] } ?? [:], limit: 1 << 20)
        guard answer.status == 200 else { throw failure(answer, what: "a token") }
        struct Token: Decodable { var token: String?; var access_token: String? }
        let token = try decodeJSON(Token.self, answer.body, what: "the token answer", context: realm)
        guard let value = token.token ?? token.access_token else {
            throw WardenError("image.registry", "the token answer has no token", context: realm)
        }
        session.authorization.withLock { $0 = "Bearer " + value }
    }

    /// `key="value",key=value` pairs of a challenge.
    static func challengeParameters(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " ,")).lowercased()
            rest = rest[rest.index(after: equals)...]
            let value: Substring
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let close = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = rest[..<close]
                rest = close < rest.endIndex ? rest[rest.index(after: close)...] : ""
            } else {
                let comma = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<comma]
                rest = rest[comma...]
            }
            result[key] = String(value)
        }
        return result
    }

    private func failure(_ response: HTTPFetcher.Response, what: String) -> WardenError {
        let body = String(decoding: response.body.prefix(300), as: UTF8.self)
        let hint = response.status == 401 || response.status == 403 ? " (credentials come from \(configuration.dockerConfig?.path ?? "no docker config"))"
            : response.status == 404 ? " (no such image or tag)" : ""
        return WardenError("image.registry", "cannot get \(what): HTTP \(response.status)\(hint): \(body)", context: "\(name) via \(response.url)")
    }
}

/// The authorization a registry granted, shared by the requests of one pull.
final class RegistrySession: Sendable {
    let authorization = Mutex<String?>(nil)
}
