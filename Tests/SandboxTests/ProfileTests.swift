import Foundation
@testable import Sandbox
import Testing
import WardenCore

@Suite("Sandbox profiles")
struct ProfileTests {
    func parse(_ json: String) throws -> SandboxProfile {
        try SandboxProfile.parse(Data(json.utf8), file: "Sandboxes/broken.json", name: "broken")
    }

    func message(_ json: String) -> String {
        do {
            _ = try parse(json)
            return "(parsed)"
        } catch {
            return "\(error)"
        }
    }

    @Test("the shipped profiles load", arguments: ["agent", "tests", "setup"])
    func shippedProfilesLoad(name: String) throws {
        let profile = try loadProfile(name)
        #expect(profile.name == name)
        #expect(profile.masks.contains("/etc/shadow"))
        #expect(profile.syscalls.errno["EPERM"]?.contains("ptrace") == true)
    }

    @Test("the set-up profile has the network, the agent's has none")
    func networkSettings() throws {
        #expect(try loadProfile("setup").network == .host)
        #expect(try loadProfile("agent").network == .none)
        #expect(try loadProfile("tests").network == .none)
    }

    @Test("errors name the file and the field")
    func errorsNameFileAndField() {
        #expect(message(#"{"limits": {"processes": "many"}}"#) == "Sandboxes/broken.json: limits.processes: must be a positive whole number")
        #expect(message(#"{"network": "lan"}"#) == #"Sandboxes/broken.json: network: must be "none" or "host", not "lan""#)
        #expect(message(#"{"limits": {"proceses": 5}}"#).hasPrefix("Sandboxes/broken.json: limits.proceses: unknown field"))
        #expect(message(#"{"syscalls": {"errno": {"EPERM": ["ptrace", "not_a_syscall"]}}}"#)
            == #"Sandboxes/broken.json: syscalls.errno.EPERM[1]: unknown syscall "not_a_syscall""#)
        #expect(message(#"{"extra_mounts": [{"source": "relative/path"}]}"#)
            == #"Sandboxes/broken.json: extra_mounts[0].source: must be an absolute path without '..', not "relative/path""#)
        #expect(message(#"{"checkout": {"git_dir": true}}"#) == "Sandboxes/broken.json: checkout.git_dir: must be a string")
        #expect(message("{not json").hasPrefix("Sandboxes/broken.json: not valid JSON"))
    }

    @Test("a profile that cannot be found says where it looked")
    func missingProfile() throws {
        let error = try #require(throws: WardenError.self) { try SandboxProfile.load("no-such-profile") }
        let message = "\(error)"
        // The working directory's Sandboxes/, then five folders up from the executable.
        #expect(message.contains(FileManager.default.currentDirectoryPath + "/Sandboxes/no-such-profile.json"), "\(message)")
        #expect(message.components(separatedBy: "/no-such-profile.json").count - 1 >= 6, "\(message)")
        #expect(message.contains("WARDEN_SANDBOXES"))
    }

    /// The program is built once per policy and process: the profile's load builds it to
    /// reject a bad policy, and every jail configuration asks for it again.
    @Test("a syscall policy's filter is built once, and another policy gets its own")
    func filterIsBuiltOncePerPolicy() throws {
        let profile = try loadProfile("agent")
        let first = try SeccompPolicy(profile.syscalls, file: "agent.json").compile()
        #expect(try SeccompPolicy(profile.syscalls, file: "agent.json").compile() == first)
        var other = profile.syscalls
        other.errno["EPERM", default: []].append("getcpu")
        let changed = try SeccompPolicy(other, file: "other.json").compile()
        #expect(changed != first)
        #expect(changed.count == first.count + 8, "one more rule is one more instruction")
        // A bad policy is refused every time: failures are not remembered as programs.
        var bad = profile.syscalls
        bad.errno["EPERM", default: []].append("not_a_syscall")
        for _ in 0..<2 {
            #expect(throws: WardenError.self) { try SeccompPolicy(bad, file: "bad.json").compile() }
        }
    }

    @Test("which finds the first executable file on the PATH, passing directories and files that are not executable")
    func whichSkipsWhatCannotRun() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-which-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let (directory, plain, runnable) = (root.appendingPathComponent("a"), root.appendingPathComponent("b"), root.appendingPathComponent("c"))
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("tool"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: plain, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: runnable, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: plain.appendingPathComponent("tool").path, contents: Data("#!/bin/sh\n".utf8),
                                               attributes: [.posixPermissions: 0o644]))
        #expect(FileManager.default.createFile(atPath: runnable.appendingPathComponent("tool").path, contents: Data("#!/bin/sh\n".utf8),
                                               attributes: [.posixPermissions: 0o755]))
        let path = [directory, plain, runnable].map(\.path).joined(separator: ":")
        #expect(ToolchainDetector.which("tool", searching: path) == runnable.appendingPathComponent("tool").path)
        #expect(ToolchainDetector.which("tool", searching: [directory, plain].map(\.path).joined(separator: ":")) == nil)
    }

    @Test("a jail that cannot be built reports the stage and the path")
    func startupFailureIsActionable() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) {
            $0.extraMounts = [.init(source: "/nonexistent/warden-toolchain")]
        }
        defer { shell.close() }
        do {
            try shell.start()
            Issue.record("the jail started with a missing mount source")
        } catch let error as WardenError {
            #expect(error.code == "jail.start")
            #expect(error.message.contains("mount: bind source /nonexistent/warden-toolchain does not exist"))
        }
    }
}

@Suite("Kernel support check")
struct KernelSupportTests {
    func verdict(_ release: String, root: Bool = true, settings: [String: String] = [:]) -> String {
        do {
            try KernelSupport.check(release: release, isRoot: root) { settings[$0] }
            return "ok"
        } catch {
            return "\(error)"
        }
    }

    @Test("old kernels, disabled user namespaces and AppArmor restrictions get actionable errors")
    func verdicts() {
        #expect(verdict("6.18.44-fc") == "ok")
        #expect(verdict("5.10.0-23-amd64").contains("too old"))
        #expect(verdict("6.1.0", settings: ["/proc/sys/user/max_user_namespaces": "0"]).contains("sysctl -w user.max_user_namespaces"))
        #expect(verdict("6.8.0", root: false, settings: ["/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"]).contains("AppArmor"))
        #expect(verdict("6.8.0", root: true, settings: ["/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"]) == "ok")
    }
}
