import CGit2
import Foundation
import Synchronization
import Testing
@testable import Workspace

/// libgit2 is linked offline (Sources/CGitOffline): its start-up parse of the CA bundle (3.7 ms)
/// is bound to Warden's no-op loader, and its Negotiate authentication to GSS-API calls that fail.
@Suite struct LibraryStartTests {
    /// Debian's libgit2 uses mbedTLS, whose certificate loader libgit2 calls at start-up.
    @Test func libgit2StartsWithoutParsingTheCertificateBundle() throws {
        try ensureLibgit2()
        #expect(skippedCertificateLoads >= 1)
    }

    /// A server that asks for Kerberos ("WWW-Authenticate: Negotiate") while a credential
    /// callback offers the default credentials: libgit2 starts its GSS-API context, which is
    /// refused, and the connection fails with a message instead of crashing or sending anything.
    /// (The test drives libgit2 directly: Workspace has no network API to drive it through.)
    @Test func negotiateAuthenticationFailsClosed() throws {
        try ensureLibgit2()
        let server = try NegotiatingServer()
        defer { server.stop() }
        let refusedBefore = refusedNegotiations

        var remote: OpaquePointer?
        #expect(git_remote_create_detached(&remote, "http://127.0.0.1:\(server.port)/repo.git") == 0)
        defer { git_remote_free(remote) }
        var callbacks = git_remote_callbacks()
        #expect(git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION)) == 0)
        callbacks.credentials = { out, _, _, allowed, _ in
            allowed & GIT_CREDENTIAL_DEFAULT.rawValue != 0 ? git_credential_default_new(out) : -1
        }
        let connected = git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, nil, nil)

        #expect(connected < 0)
        #expect(lastGitMessage().contains("negotiate"), "\(lastGitMessage())")
        #expect(refusedNegotiations > refusedBefore)
        #expect(server.requests >= 1, "libgit2 never reached the server")
    }
}

/// A loopback HTTP server that answers every request with 401 and a Negotiate challenge.
private final class NegotiatingServer: Sendable {
    let port: UInt16
    private let listener: Int32
    private let served = Mutex(0)

    var requests: Int { served.withLock { $0 } }

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 8) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { close(descriptor); throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        listener = descriptor
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in serve() }
    }

    /// Answers connections until the listener is closed.
    private func serve() {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }  // closed by stop()
            var request = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !request.ends(with: Array("\r\n\r\n".utf8)) {
                let count = read(connection, &buffer, buffer.count)
                guard count > 0 else { break }
                request += buffer[..<count]
            }
            served.withLock { $0 += 1 }
            let reply = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            _ = reply.withCString { write(connection, $0, strlen($0)) }
            close(connection)
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
