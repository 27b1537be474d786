import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WardenCore

/// Plain HTTP GETs for the parts that fetch files (image registries), so AsyncHTTPClient stays
/// in this module. Bodies are capped in memory or streamed to a file. Redirects are followed
/// here, and credentials are dropped when one leads to another host (registries send blob
/// downloads to storage that rejects them).
public final class HTTPFetcher: Sendable {
    public struct Response: Sendable {
        public var status: Int
        /// Header names lower-cased; repeated headers joined with ", ".
        public var headers: [String: String]
        /// The body, empty for a download (it went to the file).
        public var body: Data
        /// The URL that answered, after redirects.
        public var url: String
    }

    private let client: HTTPClient
    private let isShutDown = Mutex(false)

    public init(connectTimeout: Duration = .seconds(30)) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000))
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// GET with the body in memory, at most `limit` bytes.
    public func get(_ url: String, headers: [String: String] = [:], limit: Int = 16 << 20,
                    timeout: Duration = .seconds(120)) async throws -> Response {
        try await fetch(url, headers: headers, timeout: timeout) { response, finalURL in
            let body = try await response.body.collect(upTo: limit)
            return Response(status: Int(response.status.code), headers: Self.headers(response.headers), body: Data(body.readableBytesView), url: finalURL)
        }
    }

    /// GET with a successful (2xx) body written to `file`; another status's body is returned in
    /// memory (at most 1 MiB) and the file is not created.
    public func download(_ url: String, headers: [String: String] = [:], to file: URL,
                         timeout: Duration = .seconds(3600)) async throws -> Response {
        try await fetch(url, headers: headers, timeout: timeout) { response, finalURL in
            let head = Response(status: Int(response.status.code), headers: Self.headers(response.headers), body: Data(), url: finalURL)
            guard (200..<300).contains(head.status) else {
                var failed = head
                failed.body = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                return failed
            }
            let descriptor = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw WardenError("http.download", "cannot create the file: \(String(cString: strerror(errno)))", context: file.path)
            }
            do {
                for try await chunk in response.body {
                    try chunk.withUnsafeReadableBytes { bytes in
                        var written = 0
                        while written < bytes.count {
                            let count = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                            if count < 0 && errno == EINTR { continue }
                            guard count > 0 else {
                                throw WardenError("http.download", "cannot write: \(String(cString: strerror(errno)))", context: file.path)
                            }
                            written += count
                        }
                    }
                }
                guard fsync(descriptor) == 0, close(descriptor) == 0 else {
                    throw WardenError("http.download", "cannot save: \(String(cString: strerror(errno)))", context: file.path)
                }
            } catch {
                close(descriptor)
                unlink(file.path)
                throw error
            }
            return head
        }
    }

    private func fetch(_ url: String, headers: [String: String], timeout: Duration,
                       _ read: (HTTPClientResponse, String) async throws -> Response) async throws -> Response {
        var current = url
        var headers = headers
        for _ in 0..<6 {
            var request = HTTPClientRequest(url: current)
            request.headers.add(name: "User-Agent", value: "warden")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
            } catch {
                throw WardenError("http.fetch", "GET failed: \(error)", context: current)
            }
            guard (300..<400).contains(Int(response.status.code)), let location = response.headers.first(name: "location") else {
                return try await read(response, current)
            }
            guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteURL else {
                throw WardenError("http.fetch", "a redirect to an unreadable location \"\(location)\"", context: current)
            }
            if next.host != URL(string: current)?.host { headers["Authorization"] = nil }
            current = next.absoluteString
        }
        throw WardenError("http.fetch", "more than 5 redirects", context: url)
    }

    private static func headers(_ headers: HTTPHeaders) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in headers {
            let key = name.lowercased()
            result[key] = result[key].map { $0 + ", " + value } ?? value
        }
        return result
    }

    /// Shuts the client down; later calls fail. Calling it again does nothing.
    public func shutdown() async throws {
        let first = isShutDown.withLock { done in
            defer { done = true }
            return !done
        }
        if first { try await client.shutdown() }
    }

    deinit {
        if !isShutDown.withLock({ $0 }) { client.shutdown { _ in } }
    }
}
