import Foundation
import Testing
@testable import Workspace

/// libgit2's start-up parse of the CA bundle (3.7 ms) is bound to Warden's no-op loader.
@Suite struct LibraryStartTests {
    @Test func libgit2StartsWithoutParsingTheCertificateBundle() throws {
        try ensureLibgit2()
        let maps = try String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
        // Debian's libgit2 uses mbedTLS, whose loader libgit2 calls at start-up. A libgit2
        // built on OpenSSL never calls it, and has nothing to skip.
        guard maps.contains("libmbedx509") else { return }
        #expect(skippedCertificateLoads >= 1)
    }
}
