import Foundation
import Sandbox
import Testing

/// A warden-jail left over from another build must refuse to start: an older helper ran a
/// shell whose status channel the harness could not read, and every command "exited 0".
@Suite("warden-jail protocol version")
struct HelperProtocolTests {
    /// Runs the helper with `spec` on fd 3 and returns its exit status and status-pipe line.
    private func runHelper(spec tokens: [String]) throws -> (status: Int32, message: String) {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("helper-protocol-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let spec = scratch.appendingPathComponent("spec"), status = scratch.appendingPathComponent("status")
        try Data(tokens.map { $0 + "\0" }.joined().utf8).write(to: spec)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "exec 3<\"$1\" 4>\"$2\" 5</dev/null; exec \"$3\"", "helper", spec.path, status.path,
                             try JailConfiguration.locateHelper()]
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, try String(contentsOf: status, encoding: .utf8))
    }

    @Test func anotherProtocolOrNoneIsRefusedWithTheReason() throws {
        for tokens in [["protocol", "1", "arg", "true"], ["uid", "0", "gid", "0", "arg", "true"]] {
            let (status, message) = try runHelper(spec: tokens)
            #expect(status == 125)
            #expect(message.hasPrefix("spec: this warden-jail speaks protocol "), "\(message)")
            #expect(message.contains("rebuild warden and warden-jail together"))
        }
    }

    @Test func theHarnessSpeaksTheHelpersProtocol() throws {
        // The real path: a shell through the harness's own specification starts and frames.
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let result = try shell.run("echo framed", timeout: 30)
        #expect(result.exitCode == 0)
        #expect(result.stdout.text == "framed\n")
    }
}
