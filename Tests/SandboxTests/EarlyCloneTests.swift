import Foundation
@testable import Sandbox
import Testing
import WardenCore

/// The helper clones the jail's pid 1 before its specification arrives, guessing the
/// namespaces; the jail must still be exactly what the specification asks for.
@Suite("Jail pid 1 cloned before its specification")
struct EarlyCloneTests {
    /// Runs `command` in a jail of `profile` on a helper spawned with the given guess, and
    /// returns its stdout.
    func output(of command: String, profile: String, expectsHostNetwork: Bool) throws -> String {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let configuration = try JailConfiguration(profile: try loadProfile(profile), checkout: checkout.path)
        let spawned = try HelperProcess.spawn(configuration.helperPath, passing: nil, expectsHostNetwork: expectsHostNetwork)
        let helper = try HelperProcess.start(configuration, arguments: ["/bin/sh", "-c", command], workingDirectory: nil, on: spawned)
        helper.closeInput()
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            var ready = pollfd(fd: helper.output, events: Int16(POLLIN), revents: 0)
            _ = poll(&ready, 1, 1000)
            let count = read(helper.output, &buffer, buffer.count)
            if count == 0 { break }
            if count > 0 { text += buffer[..<count] }
        }
        #expect(helper.terminate() == 0, "the jailed command failed")
        return String(decoding: text, as: UTF8.self)
    }

    static let interfaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort"

    @Test("a helper that guessed the host's network still gives an agent jail nothing but its own loopback")
    func wrongGuessOfHostNetwork() throws {
        #expect(try output(of: Self.interfaces, profile: "agent", expectsHostNetwork: true) == "lo\n")
        #expect(try output(of: Self.interfaces, profile: "agent", expectsHostNetwork: false) == "lo\n")
    }

    @Test("a helper that guessed a network namespace gives a host-network profile the host's interfaces")
    func wrongGuessOfOwnNetwork() throws {
        let hostInterfaces = try host(Self.interfaces)
        #expect(hostInterfaces != "lo\n", "the host should have more than a loopback")
        #expect(try output(of: Self.interfaces, profile: "setup", expectsHostNetwork: false) == hostInterfaces)
        #expect(try output(of: Self.interfaces, profile: "setup", expectsHostNetwork: true) == hostInterfaces)
    }

    @Test("pid 1 moves into the jail's cgroups before anything runs, and they are its cgroup namespace's root")
    func cgroupsAreTheNamespaceRoot() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let placement = shell.configuration.cgroups
        guard placement.pids != nil || placement.memory != nil else { return }
        // Inside, every hierarchy's path is the namespace's root.
        let inside = try shell.run("cat /proc/self/cgroup").stdout.text.split(separator: "\n")
        #expect(!inside.isEmpty)
        for line in inside { #expect(line.hasSuffix(":/"), "the jail sees a cgroup outside its own: \(line)") }
        // Outside, the jail's processes are in warden-<helper pid> below each controller's root.
        let tag = "49\(Int.random(in: 100_000...999_999))"
        _ = try shell.run("(sleep \(tag) &)")
        let pid = try #require(pid_t(try host("pgrep -f '^sleep \(tag)$'").split(separator: "\n").first ?? ""))
        let outside = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
        for root in [placement.pids, placement.memory].compactMap({ $0 }) {
            let relative = root.path.replacingOccurrences(of: #"^/sys/fs/cgroup(/unified)?(/(pids|memory))?"#, with: "", options: .regularExpression)
            #expect(outside.contains(relative + "/warden-"), "\(pid) is not in a jail cgroup below \(root.path): \(outside)")
        }
    }
}
