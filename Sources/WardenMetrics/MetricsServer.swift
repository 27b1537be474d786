import Foundation
import Synchronization
import WardenCore

/// A minimal HTTP/1.1 endpoint for Prometheus on loopback: `GET /metrics` answers the scrape,
/// anything else 404. One thread accepts and answers one connection at a time (a scrape is a
/// few KiB every few seconds); `stop()` ends it.
public final class MetricsServer: Sendable {
    /// The bound port (the one asked for, or the kernel's choice for 0).
    public let port: Int
    private let descriptor: Int32
    private let stopped = Mutex(false)

    /// Listens on 127.0.0.1:`port` and serves `metrics` until `stop()`.
    public init(port: Int, metrics: WardenMetrics) throws {
        let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketDescriptor >= 0 else { throw Self.failure("cannot create a socket", port) }
        var yes: Int32 = 1
        setsockopt(socketDescriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port)).bigEndian
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socketDescriptor, 16) == 0 else {
            let error = Self.failure("cannot listen on 127.0.0.1:\(port)", port)
            close(socketDescriptor)
            throw error
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketDescriptor, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
        descriptor = socketDescriptor
        let thread = Thread { [self] in serve(metrics) }
        thread.name = "warden-metrics"
        thread.start()
    }

    deinit { stop() }

    /// Stops accepting; the serving thread ends at its next accept.
    public func stop() {
        let first = stopped.withLock { was in
            defer { was = true }
            return !was
        }
        guard first else { return }
        shutdown(descriptor, Int32(SHUT_RDWR))
        close(descriptor)
    }

    private func serve(_ metrics: WardenMetrics) {
        while !stopped.withLock({ $0 }) {
            let connection = accept(descriptor, nil, nil)
            guard connection >= 0 else {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            answer(connection, metrics)
            close(connection)
        }
    }

    /// Reads the request head (at most 8 KiB, 5 s) and writes the response.
    private func answer(_ connection: Int32, _ metrics: WardenMetrics) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 8192, !request.ends(with: [13, 10, 13, 10]) {
            let count = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            request += buffer[0..<count]
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let found = line.count >= 2 && line[0] == "GET" && (line[1] == "/metrics" || line[1].hasPrefix("/metrics?"))
        let body = found ? metrics.exposition() : Array("not found: the metrics are at /metrics\n".utf8)
        let head = "HTTP/1.1 \(found ? "200 OK" : "404 Not Found")\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let response = Array(head.utf8) + body
        var offset = 0
        while offset < response.count {
            let written = response.withUnsafeBytes { bytes in
                bytes.baseAddress.map { write(connection, $0 + offset, bytes.count - offset) } ?? -1
            }
            guard written > 0 else { return }
            offset += written
        }
    }

    private static func failure(_ message: String, _ port: Int) -> WardenError {
        WardenError("metrics.listen", "\(message): \(String(cString: strerror(errno)))", context: "port \(port)")
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
