import CSeccomp
import Foundation
import WardenCore

/// `warden doctor`: what this host gives the jail, each finding with how to fix it.
///
/// Every probe reads below `host.root`, so a test can hand it a host it built (user namespaces
/// off, a cgroup controller missing) and check the verdicts. On the real host (`root` empty)
/// the last check starts a real jail and runs `true` in it, the one proof that all the rest
/// add up.
public struct Doctor: Sendable {
    /// The host being examined.
    public struct Host: Sendable {
        /// Prefix for every /proc and /sys path: "" for this machine.
        public var root: String
        /// `uname -r`.
        public var kernelRelease: String
        public var isRoot: Bool

        public init(root: String, kernelRelease: String, isRoot: Bool) {
            self.root = root
            self.kernelRelease = kernelRelease
            self.isRoot = isRoot
        }

        /// This machine.
        public static var current: Host {
            Host(root: "", kernelRelease: KernelSupport.currentRelease(), isRoot: geteuid() == 0)
        }
    }

    /// One finding.
    public struct Check: Sendable, Hashable {
        public enum Verdict: String, Sendable {
            case ok, warning, failed
        }

        public var name: String
        public var verdict: Verdict
        public var detail: String
        /// What to do about it, when not ok.
        public var fix: String?
    }

    public let host: Host
    /// The profile used for the jail start check (nil: skip it).
    public let smokeTestProfile: SandboxProfile?

    public init(host: Host = .current, smokeTestProfile: SandboxProfile? = nil) {
        self.host = host
        self.smokeTestProfile = smokeTestProfile
    }

    /// Runs every check, in the order a reader fixes things.
    public func run() -> [Check] {
        var checks = [kernel(), userNamespaces()]
        checks += cgroups()
        checks.append(overlayfs())
        checks.append(seccomp())
        checks.append(helper())
        checks += toolchains()
        if let smokeTestProfile, host.root.isEmpty { checks.append(jailStart(smokeTestProfile)) }
        return checks
    }

    private func read(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: host.root + path, encoding: .utf8) else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func kernel() -> Check {
        if let problem = KernelSupport.versionProblem(release: host.kernelRelease) {
            return Check(name: "kernel", verdict: .failed, detail: problem.message, fix: nil)
        }
        return Check(name: "kernel", verdict: .ok, detail: "Linux \(host.kernelRelease)", fix: nil)
    }

    private func userNamespaces() -> Check {
        if let problem = KernelSupport.namespaceProblem(isRoot: host.isRoot, read: read) {
            return Check(name: "user namespaces", verdict: .failed, detail: problem.message, fix: nil)
        }
        let limit = read("/proc/sys/user/max_user_namespaces").map { " (user.max_user_namespaces = \($0))" } ?? ""
        return Check(name: "user namespaces", verdict: .ok, detail: "available" + limit, fix: nil)
    }

    private func cgroups() -> [Check] {
        let placement = CgroupPlacement.discover(hostRoot: host.root)
        let delegate = "run warden in a cgroup it may manage, e.g. `systemd-run --scope -p Delegate=yes warden ...`, "
            + "or give the container a writable cgroup namespace"
        func check(_ controller: String, _ found: CgroupPlacement.Root?, missing: String) -> Check {
            if let found {
                return Check(name: "cgroup \(controller)", verdict: .ok,
                             detail: "\(found.unified ? "v2" : "v1") at \(found.path)", fix: nil)
            }
            let why = placement.problems.filter { $0.contains(controller) || $0.contains("/proc/self/cgroup") }
            return Check(name: "cgroup \(controller)", verdict: host.isRoot && controller == "pids" ? .failed : .warning,
                         detail: (why.isEmpty ? "the \(controller) controller was not found" : why.joined(separator: "; ")) + "; " + missing,
                         fix: delegate)
        }
        return [
            check("pids", placement.pids, missing: "the process cap falls back to the jail's pid_max (as root the jail refuses to start without either)"),
            check("memory", placement.memory, missing: "the memory limit falls back to RLIMIT_AS only, and out-of-memory kills are not reported"),
        ]
    }

    private func overlayfs() -> Check {
        let filesystems = read("/proc/filesystems") ?? ""
        let listed = filesystems.split(separator: "\n").contains { $0.split(whereSeparator: \.isWhitespace).last == "overlay" }
        guard listed else {
            return Check(name: "overlayfs", verdict: .warning, detail: "overlay is not in /proc/filesystems",
                         fix: "`modprobe overlay`; without it image tasks need a copied root")
        }
        let inUserNamespaces = KernelSupport.parseVersion(host.kernelRelease).map { $0 >= (5, 11) } ?? false
        return Check(name: "overlayfs", verdict: inUserNamespaces ? .ok : .warning,
                     detail: inUserNamespaces ? "available, mountable in a user namespace" : "available, but not in user namespaces before Linux 5.11",
                     fix: inUserNamespaces ? nil : "upgrade to Linux 5.11 or newer")
    }

    private func seccomp() -> Check {
        guard let version = seccomp_version() else {
            return Check(name: "libseccomp", verdict: .failed, detail: "seccomp_version() returned nothing", fix: "install libseccomp2 2.5 or newer")
        }
        let (major, minor, micro) = (version.pointee.major, version.pointee.minor, version.pointee.micro)
        let api = seccomp_api_get()
        let recent = (major, minor) >= (2, 5)
        return Check(name: "libseccomp", verdict: recent ? .ok : .warning, detail: "\(major).\(minor).\(micro), API level \(api)",
                     fix: recent ? nil : "libseccomp 2.5 or newer knows the syscalls of current kernels: `apt install libseccomp2`")
    }

    private func helper() -> Check {
        do {
            return Check(name: "warden-jail", verdict: .ok, detail: try JailConfiguration.locateHelper(), fix: nil)
        } catch let error as WardenError {
            return Check(name: "warden-jail", verdict: .failed, detail: error.message, fix: nil)
        } catch {
            return Check(name: "warden-jail", verdict: .failed, detail: "\(error)", fix: nil)
        }
    }

    private func toolchains() -> [Check] {
        let names = smokeTestProfile?.toolchains ?? ["python3"]
        let found = ToolchainDetector.detect(names)
        return names.map { name in
            guard let toolchain = found.first(where: { $0.name == name }) else {
                return Check(name: "toolchain \(name)", verdict: .warning, detail: "not found on PATH",
                             fix: "install it on the host if tasks need it; jails see only host toolchains and images")
            }
            return Check(name: "toolchain \(name)", verdict: .ok,
                         detail: "bound from " + (toolchain.prefixes.isEmpty ? "the system" : toolchain.prefixes.joined(separator: ", ")), fix: nil)
        }
    }

    private func jailStart(_ profile: SandboxProfile) -> Check {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-doctor-\(getpid())")
        defer {
            do { try FileManager.default.removeItem(at: scratch) } catch {
                FileHandle.standardError.write(Data("warden: warning: cannot remove \(scratch.path): \(error)\n".utf8))
            }
        }
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            let shell = ShellSession(configuration: try JailConfiguration(profile: profile, checkout: scratch))
            defer { shell.close() }
            let result = try shell.run("true", timeout: 30)
            guard result.exitCode == 0 else {
                return Check(name: "jail", verdict: .failed, detail: "`true` exited \(result.exitCode.map(String.init) ?? "abnormally"): "
                             + result.stderr.text.prefix(300), fix: nil)
            }
            return Check(name: "jail", verdict: .ok,
                         detail: "started the \(profile.name) profile's jail and ran `true` (\(String(format: "%.1f", result.durationMs)) ms)", fix: nil)
        } catch let error as WardenError {
            return Check(name: "jail", verdict: .failed, detail: error.message, fix: nil)
        } catch {
            return Check(name: "jail", verdict: .failed, detail: "\(error)", fix: nil)
        }
    }
}
