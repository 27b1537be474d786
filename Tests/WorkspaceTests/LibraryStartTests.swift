import Foundation
import Testing
@testable import Workspace

/// libgit2's start-up parse of the CA bundle (3.7 ms) is bound to Warden's no-op loader.
@Suite struct LibraryStartTests {
    /// Debian's libgit2 uses mbedTLS, whose loader libgit2 calls at start-up. A libgit2 built
    /// on OpenSSL never calls it, and has nothing to skip.
    static var libgit2UsesMbedTLS: Bool {
        // /proc files report size 0: read to the end rather than by the reported size.
        let maps = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd()) ?? nil
        return maps.map { String(decoding: $0, as: UTF8.self).contains("libmbedx509") } ?? false
    }

    @Test(.enabled(if: libgit2UsesMbedTLS)) func libgit2StartsWithoutParsingTheCertificateBundle() throws {
        try ensureLibgit2()
        #expect(skippedCertificateLoads >= 1)
    }
}
