import Foundation
import Sandbox
import Testing

/// `warden doctor` against hosts the tests build: /proc and /sys files under a temporary root.
@Suite("warden doctor on simulated hosts")
struct DoctorTests {
    /// A host with cgroup v2 mounted, user namespaces on, and the given controllers available.
    private func makeHost(controllers: String, maxUserNamespaces: String = "15000") throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("doctor-\(UUID().uuidString)")
        func write(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        try write("proc/sys/user/max_user_namespaces", maxUserNamespaces + "\n")
        try write("proc/self/cgroup", "0::/job\n")
        try write("proc/filesystems", "nodev\ttmpfs\nnodev\toverlay\n")
        try write("sys/fs/cgroup/cgroup.controllers", controllers + "\n")
        try write("sys/fs/cgroup/job/cgroup.controllers", controllers + "\n")
        try write("sys/fs/cgroup/job/cgroup.subtree_control", "")
        try write("sys/fs/cgroup/job/cgroup.procs", "1\n2\n")
        try write("sys/fs/cgroup/job/warden/cgroup.subtree_control", "")
        return root
    }

    private func check(_ name: String, in checks: [Doctor.Check]) throws -> Doctor.Check {
        try #require(checks.first { $0.name == name }, "no \(name) check in \(checks.map(\.name))")
    }

    @Test func missingPidsControllerIsReported() throws {
        let root = try makeHost(controllers: "cpu memory io")
        defer { try? FileManager.default.removeItem(at: root) }
        let checks = Doctor(host: .init(root: root.path, kernelRelease: "6.1.0-18-amd64", isRoot: true)).run()
        let pids = try check("cgroup pids", in: checks)
        #expect(pids.verdict == .failed)
        #expect(pids.detail.contains("pids controller is not available"))
        #expect(pids.fix?.contains("Delegate=yes") == true)
        let memory = try check("cgroup memory", in: checks)
        #expect(memory.verdict == .ok, "\(memory)")
        #expect(try check("user namespaces", in: checks).verdict == .ok)
        #expect(try check("overlayfs", in: checks).verdict == .ok)
        // The same host with the controller present passes that check.
        let withPids = try makeHost(controllers: "cpu memory pids")
        defer { try? FileManager.default.removeItem(at: withPids) }
        let fixed = Doctor(host: .init(root: withPids.path, kernelRelease: "6.1.0", isRoot: true)).run()
        #expect(try check("cgroup pids", in: fixed).verdict == .ok)
    }

    @Test func userNamespacesSwitchedOffAreReportedWithTheFix() throws {
        let root = try makeHost(controllers: "memory pids", maxUserNamespaces: "0")
        defer { try? FileManager.default.removeItem(at: root) }
        let checks = Doctor(host: .init(root: root.path, kernelRelease: "6.1.0", isRoot: false)).run()
        let namespaces = try check("user namespaces", in: checks)
        #expect(namespaces.verdict == .failed)
        #expect(namespaces.detail.contains("user.max_user_namespaces = 0"))
        #expect(namespaces.detail.contains("sysctl -w user.max_user_namespaces="))
        #expect(try check("kernel", in: checks).verdict == .ok)
    }

    @Test func oldKernelFails() throws {
        let root = try makeHost(controllers: "memory pids")
        defer { try? FileManager.default.removeItem(at: root) }
        let checks = Doctor(host: .init(root: root.path, kernelRelease: "5.10.0-28-amd64", isRoot: true)).run()
        #expect(try check("kernel", in: checks).verdict == .failed)
        // Overlay mounts in user namespaces came in 5.11.
        #expect(try check("overlayfs", in: checks).verdict == .warning)
    }

    @Test func thisHostStartsAJail() throws {
        let checks = Doctor(smokeTestProfile: try SandboxProfile.load("agent")).run()
        let jail = try check("jail", in: checks)
        #expect(jail.verdict == .ok, "\(jail)")
        #expect(try check("libseccomp", in: checks).detail.contains("API level"))
    }
}
