import CJail
import Foundation
import Synchronization
import WardenCore

/// The host's user and group ids of a jail's root: whom the jail's processes are outside the
/// jail, and whose rights they have over host files.
///
/// A root harness maps the jail's root to `unprivilegedRoot`, never to the host's root; an
/// unprivileged harness maps it to itself. The checkout is mounted id-mapped, so through the
/// jail's root (`/proc/<jail pid>/root/<checkout>`) its files appear owned by these ids and
/// files created there land on disk owned by the checkout's owner. Code acting on the
/// checkout for the jail (the file tools) acts with these ids (`setfsuid`/`setfsgid` on a
/// thread of its own) to get exactly the jail's rights.
public struct JailIdentity: Sendable, Hashable {
    public var uid: uid_t
    public var gid: gid_t

    public init(uid: uid_t, gid: gid_t) {
        self.uid = uid
        self.gid = gid
    }

    /// Where a root harness maps the jail's root: an id no account uses, far from the ranges
    /// `/etc/subuid` hands out.
    public static let unprivilegedRoot = JailIdentity(uid: 2_147_483_646, gid: 2_147_483_646)

    /// The identity jails started by this process get.
    public static var current: JailIdentity {
        geteuid() == 0 ? unprivilegedRoot : JailIdentity(uid: geteuid(), gid: getegid())
    }
}

/// A container image as a jail's root: the unpacked root filesystem on the host (shared,
/// never written: each jail writes to an overlay layer of its own) and the parts of the image's
/// config the jail honours.
public struct JailImage: Sendable, Hashable {
    /// The unpacked root filesystem's host path.
    public var rootfs: String
    /// The image's `Env` (`KEY=value`), in order; it overrides the jail's defaults.
    public var environment: [String]
    /// The image's `WorkingDir` (where SWE-bench images keep the repository, `/testbed`).
    public var workingDirectory: String?
    /// A name for messages.
    public var name: String
    /// The image's `User` as ids in the jail; nil runs as the jail's root.
    public var user: JailUser?

    /// Where the task's checkout is bound: the image's `WorkingDir`, where SWE-bench images keep
    /// the repository, else `/testbed`.
    public var checkoutMountPoint: String { workingDirectory ?? "/testbed" }

    public init(rootfs: String, environment: [String] = [], workingDirectory: String? = nil, name: String, user: JailUser? = nil) {
        self.rootfs = rootfs
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.name = name
        self.user = user
    }
}

/// Who an image jail's processes are inside the jail. The host ids stay the jail's identity
/// (`JailIdentity`): the user namespace maps them to these instead of to 0, so the checkout,
/// the writable layer and the image's files, all the jail identity's on the host, are this
/// user's in the jail.
public struct JailUser: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    /// The name from the image's /etc/passwd (for `USER`), when it has one.
    public var name: String?

    public init(uid: UInt32, gid: UInt32, name: String? = nil) {
        self.uid = uid
        self.gid = gid
        self.name = name
    }
}

/// A task environment Warden built (a venv, installed tools), bound at `mountPoint` in
/// host-rootfs jails: writable in the set-up jail that builds it, read-only everywhere after.
///
/// The path is fixed because what is built there records absolute paths (a venv's scripts
/// and `pyvenv.cfg`, an editable install's `.pth`).
public struct TaskEnvironmentMount: Sendable, Hashable {
    public static let mountPoint = "/opt/warden-env"
    /// Where a task with an environment has its checkout in every jail (the build's, the
    /// agent's, the tests'), so an editable install made at the build finds it later.
    public static let checkoutMountPoint = "/testbed"

    /// The host directory holding the environment.
    public var directory: String
    public var writable: Bool
    /// The interpreter the environment's venv points into, bound as other toolchains are.
    public var toolchains: [Toolchain]
    /// Variables the environment needs (`VIRTUAL_ENV`); its `bin/` goes first on PATH.
    public var variables: [String: String]

    public init(directory: String, writable: Bool = false, toolchains: [Toolchain] = [], variables: [String: String] = [:]) {
        self.directory = directory
        self.writable = writable
        self.toolchains = toolchains
        self.variables = variables
    }
}

/// Everything needed to start jails over one checkout: the profile, the checkout's real path,
/// the compiled syscall filter and the helper executable.
public struct JailConfiguration: Sendable {
    public var profile: SandboxProfile
    /// Where the checkout is inside the jail: its host path (with symlinks resolved) on the
    /// host rootfs, or the image's repository directory (`/testbed`).
    public var checkout: String
    /// The checkout's host path, symlinks resolved.
    public var checkoutSource: String
    /// The image the jail's root is made of (profiles with `"rootfs": "image"`).
    public var image: JailImage?
    /// A host directory for the overlay's writable layer (`upper/`, `work/`); ShellSession
    /// sets it, one per session, so it survives a restart of the jail and goes with the session.
    public var layerDirectory: String?
    /// The image root's top-level entries, bound one by one for a read-only image root
    /// (the jail's own mount points, /proc, /dev and /tmp, are left to the helper).
    let imageEntries: [String]
    public var helperPath: String
    /// Where a command's full output is written when asked for; nil keeps only head and tail.
    public var spillDirectory: String?
    /// A host directory bound read-write at /tmp in place of the profile's /tmp tmpfs, so
    /// /tmp survives a restart of the jail (ShellSession sets it; nil keeps the tmpfs).
    public var temporaryDirectory: String?
    /// The task's built environment, bound at `TaskEnvironmentMount.mountPoint`.
    public let environmentMount: TaskEnvironmentMount?
    /// The compiled syscall filter, hex-encoded once for every jail's specification.
    let seccompHex: String
    let toolchains: [Toolchain]
    /// Where jails get their pids and memory cgroups.
    var cgroups: CgroupPlacement
    /// The host ids of the jail's root (see `JailIdentity`).
    public let hostIdentity: JailIdentity

    /// - Parameters:
    ///   - image: the jail's root for a profile with `"rootfs": "image"` (required there, refused elsewhere).
    ///   - mountPoint: where the checkout appears in the jail; its host path when nil.
    ///   - environmentMount: the task's built environment (host-rootfs jails only).
    public init(profile: SandboxProfile, checkout: URL, helperPath: String? = nil, spillDirectory: String? = nil,
                image: JailImage? = nil, mountPoint: String? = nil, environmentMount: TaskEnvironmentMount? = nil) throws {
        try KernelSupport.ensureSupported()
        let real = checkout.resolvingSymlinksInPath().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WardenError("jail.checkout", "the checkout \(checkout.path) does not exist or is not a directory")
        }
        switch (profile.rootfs, image) {
        case (.image, nil):
            throw WardenError("jail.image", "the profile runs jails in the task's image, but the task names none (set its \"image\" "
                + "field, or --image-template); use a host-rootfs profile for tasks without images", context: profile.name)
        case let (.host, image?):
            throw WardenError("jail.image", "the task runs in image \(image.name), but the profile uses the host's root; use an image "
                + "profile (agent-image, tests-image)", context: profile.name)
        default: break
        }
        if let mountPoint {
            guard mountPoint.hasPrefix("/"), mountPoint != "/", !mountPoint.split(separator: "/").contains("..") else {
                throw WardenError("jail.checkout", "the checkout's mount point must be an absolute path below /, not \"\(mountPoint)\"")
            }
        }
        if let image, environmentMount != nil {
            throw WardenError("jail.environment", "a built task environment runs on the host's root; the task's image \(image.name) "
                + "brings its own environment", context: profile.name)
        }
        if let image, image.rootfs.contains(where: { $0 == "," || $0 == ":" }) {
            throw WardenError("jail.image", "the unpacked image's path cannot hold ',' or ':' (overlayfs options)", context: image.rootfs)
        }
        self.profile = profile
        self.checkout = mountPoint ?? real
        self.checkoutSource = real
        self.image = image
        self.environmentMount = environmentMount
        if let image {
            do {
                imageEntries = try FileManager.default.contentsOfDirectory(atPath: image.rootfs)
                    .filter { !["proc", "dev", "tmp", "sys"].contains($0) }.sorted()
            } catch {
                throw WardenError("jail.image", "cannot list the unpacked image: \(error.localizedDescription)", context: image.rootfs)
            }
        } else {
            imageEntries = []
        }
        self.helperPath = try helperPath ?? Self.locateHelper()
        self.spillDirectory = spillDirectory
        self.seccompHex = Self.hex(try SeccompPolicy(profile.syscalls, file: profile.name).compile())
        let detected = ToolchainDetector.detect(profile.toolchains)
        self.toolchains = detected + (environmentMount?.toolchains ?? []).filter { !detected.contains($0) }
        self.cgroups = CgroupPlacement.current
        self.hostIdentity = JailIdentity.current
        if cgroups.memory == nil {
            let reasons = cgroups.problems.isEmpty ? "no memory cgroup controller was found" : cgroups.problems.joined(separator: "; ")
            if geteuid() == 0 {
                throw WardenError("jail.memory", "cannot cap the jails' memory: \(reasons). Running as root without the cap could let one "
                    + "jail take the host down; give warden a memory cgroup (cgroup v1 /sys/fs/cgroup/memory, or a cgroup v2 subtree "
                    + "with the memory controller)")
            }
            Self.warnUncappedMemory(reasons)
        }
    }

    /// Warns once per process that jails only get a per-process address-space limit.
    private static func warnUncappedMemory(_ reasons: String) {
        warnedUncappedMemory.withLock { warned in
            guard !warned else { return }
            warned = true
            FileHandle.standardError.write(Data(("warden: warning: jails' memory is not capped as a whole (\(reasons)); "
                + "each process gets limits.memory_mb of address space instead\n").utf8))
        }
    }

    private static let warnedUncappedMemory = Mutex(false)

    /// Lower-case hex; `String(format:)` per byte cost milliseconds for every jail configuration.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Starts the helper of the process's first shell now, before its jail is configured (see
    /// `PrestartedShellHelper`). Without a helper to find, nothing starts: the session's own
    /// start then reports that.
    public static func prestartShellHelper() {
        PrestartedShellHelper.start(path: try locateHelper())
    }

    /// Starts the host probes a first jail configuration makes (toolchains found through
    /// their version managers, kernel support, cgroup placement), on a thread of their own,
    /// so they overlap whatever the command does before it configures a jail. Each probe is
    /// made once per process; a later configuration finds the answer or waits for it.
    public static func probeHostInBackground(for profile: SandboxProfile) {
        BlockingThreads.shared.detach {
            _ = ToolchainDetector.detect(profile.toolchains)
            _ = try? KernelSupport.ensureSupported()  // its failure is reported by the configuration itself
            _ = CgroupPlacement.current
        }
    }

    /// The helper lives beside the running executable (`.build/debug/warden-jail`), or where
    /// `WARDEN_JAIL` says. Plain system calls: `ProcessInfo`'s environment dictionary,
    /// `FileManager` and `URL` cost 0.75 ms of a 28 ms start.
    public static func locateHelper() throws -> String {
        if let path = getenv("WARDEN_JAIL") { return String(cString: path) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let executable = length > 0 ? String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        var directory = executable.hasPrefix("/") ? executable : FileManager.default.currentDirectoryPath + "/" + executable
        // An .xctest bundle on Linux is a file beside the products; on other layouts look one level up.
        for _ in 0..<2 {
            directory = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
            let candidate = directory + "/warden-jail"
            var status = stat()
            if stat(candidate, &status) == 0, status.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        throw WardenError("jail.helper", "cannot find the warden-jail helper beside \(executable); build it with "
            + "`swift build --product warden-jail` or set WARDEN_JAIL to its path")
    }

    /// The jail's environment: explicit and minimal. Nothing of the harness's own environment
    /// (where API keys live) reaches the jail.
    public var environment: [String: String] {
        if let image { return imageEnvironment(image) }
        var path = (environmentMount == nil ? [] : [TaskEnvironmentMount.mountPoint + "/bin"]) + toolchains.flatMap(\.pathEntries)
        path += ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        var environment: [String: String] = [
            "PATH": path.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.joined(separator: ":"),
            "HOME": profile.home,
            "USER": "root",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "TMPDIR": "/tmp",
        ]
        for toolchain in toolchains { environment.merge(toolchain.environment) { $1 } }
        environment.merge(environmentMount?.variables ?? [:]) { $1 }
        environment.merge(profile.environment) { $1 }
        return environment
    }

    /// An image jail's environment: the same defaults, then the image's `Env` (its PATH,
    /// conda's variables...), then the profile's.
    private func imageEnvironment(_ image: JailImage) -> [String: String] {
        var environment: [String: String] = [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": profile.home, "USER": "root",
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "TMPDIR": "/tmp",
        ]
        if let user = image.user { environment["USER"] = user.name ?? String(user.uid) }
        for entry in image.environment {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else { continue }
            environment[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        environment.merge(profile.environment) { $1 }
        return environment
    }

    /// The helper's specification for one jail running `arguments`, first trying to start in
    /// `workingDirectory` and falling back to the checkout's root.
    func specification(arguments: [String], workingDirectory: String?) -> [String] {
        var tokens = ["protocol", String(CJAIL_PROTOCOL_VERSION), "uid", String(geteuid()), "gid", String(getegid()), "net", profile.network.rawValue]
        let mapped = hostIdentity.uid != geteuid()
        if mapped { tokens += ["map-root", String(hostIdentity.uid), String(hostIdentity.gid)] }
        if let user = image?.user { tokens += ["user", String(user.uid), String(user.gid)] }
        // Mapped, the checkout and writable binds appear owned by the jail's root.
        let idmap = mapped ? "-idmap" : ""
        var mounts: [(depth: Int, tokens: [String])] = []
        func add(_ target: String, _ op: [String]) {
            mounts.append((target.split(separator: "/").count, op))
        }
        if let image, profile.imageRoot == .readOnly {
            for entry in imageEntries { add("/" + entry, ["bind-ro-try", image.rootfs + "/" + entry, "/" + entry]) }
        } else if let image {
            // The image's files are the root; the host's system directories stay out.
            let layer = layerDirectory ?? "/nonexistent"
            tokens += ["root-image", image.rootfs, layer + "/upper", layer + "/work"]
        } else {
            for path in profile.systemMounts { add(path, ["bind-ro-try", path, path]) }
            for prefix in toolchains.flatMap(\.prefixes) { add(prefix, ["bind-ro-try", prefix, prefix]) }
        }
        for mount in profile.extraMounts {
            let op = (mount.writable ? "bind-rw" : "bind-ro") + (mount.optional ? "-try" : "") + (mount.writable ? idmap : "")
            add(mount.target, [op, mount.source, mount.target])
        }
        for tmpfs in profile.tmpfs {
            if tmpfs.target == "/tmp", let temporaryDirectory {
                add("/tmp", ["bind-rw", temporaryDirectory, "/tmp"])
            } else {
                add(tmpfs.target, ["tmpfs", tmpfs.target, String(tmpfs.sizeMB << 20), "1777"])
            }
        }
        if let environmentMount {
            let target = TaskEnvironmentMount.mountPoint
            add(target, [(environmentMount.writable ? "bind-rw" : "bind-ro") + idmap, environmentMount.directory, target])
        }
        add("/dev", ["dev"])
        // An image's home is in the jail's writable layer, with whatever the image keeps there.
        if image == nil || profile.imageRoot == .readOnly, !profile.tmpfs.contains(where: { profile.home == $0.target || profile.home.hasPrefix($0.target + "/") }) {
            add(profile.home, ["tmpfs", profile.home, String(256 << 20), "0700"])
        }
        add(checkout, [(profile.checkoutWritable ? "bind-rw" : "bind-ro") + idmap, checkoutSource, checkout])
        if profile.gitDirectoryReadOnly {
            add(checkout + "/.git", ["bind-ro-try" + idmap, checkoutSource + "/.git", checkout + "/.git"])
        }
        // Shallow targets first, so a checkout under /tmp lands on top of the private /tmp.
        for mount in mounts.enumerated().sorted(by: { ($0.element.depth, $0.offset) < ($1.element.depth, $1.offset) }) {
            tokens += mount.element.tokens
        }
        for path in profile.masks { tokens += ["mask", path] }

        let limits = profile.limits
        tokens += ["pids", String(limits.processes)]
        if let pids = cgroups.pids { tokens += ["pids-cgroup", pids.path] }
        if let memory = cgroups.memory {
            tokens += ["memory", String(limits.memoryMB << 20), "memory-cgroup", memory.path]
        } else {
            tokens += ["rlimit", "as", String(limits.memoryMB << 20), String(limits.memoryMB << 20)]
        }
        tokens += ["rlimit", "cpu", String(limits.cpuSeconds), String(limits.cpuSeconds + 1)]
        tokens += ["rlimit", "fsize", String(limits.fileSizeMB << 20), String(limits.fileSizeMB << 20)]
        tokens += ["rlimit", "nofile", String(limits.openFiles), String(limits.openFiles)]
        tokens += ["rlimit", "core", "0", "0"]
        tokens += ["seccomp", seccompHex]
        if let workingDirectory { tokens += ["cwd", workingDirectory] }
        tokens += ["cwd", checkout]
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) { tokens += ["env", "\(key)=\(value)"] }
        for argument in arguments { tokens += ["arg", argument] }
        return tokens
    }
}
