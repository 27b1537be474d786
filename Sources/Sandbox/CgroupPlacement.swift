import Foundation

/// Where jails get their cgroups: a `warden` directory below the harness's own cgroup in the
/// hierarchies that carry the pids and memory controllers. The helper creates
/// `warden/warden-<helper pid>` per jail, sets `pids.max` and the memory limit there and
/// moves the jail's pid 1 inside before it runs anything. Found, and on cgroup v2 enabled, once per process.
struct CgroupPlacement: Sendable, Hashable {
    struct Root: Sendable, Hashable {
        /// The directory the helper creates each jail's cgroup in.
        var path: String
        /// The harness's own cgroup in this hierarchy (its memory limit bounds the jails').
        var home: String
        /// cgroup v2 (`memory.events`) rather than v1 (`memory.oom_control`).
        var unified: Bool

        /// The cgroup of the jail whose helper has this pid.
        func jail(helper pid: pid_t) -> String { path + "/warden-\(pid)" }
    }

    var pids: Root?
    var memory: Root?
    /// Why a controller could not be had, for the error or the warning.
    var problems: [String] = []

    static let current = discover()

    /// Reads `/proc/self/cgroup`: v1 controllers first (a hybrid host binds pids and memory
    /// there), then the unified v2 hierarchy for what is still missing. `hostRoot` prefixes
    /// every path, so `warden doctor`'s tests can hand it a host they built.
    static func discover(hostRoot: String = "") -> CgroupPlacement {
        var placement = CgroupPlacement()
        guard let membership = try? String(contentsOfFile: hostRoot + "/proc/self/cgroup", encoding: .utf8) else {
            placement.problems.append("\(hostRoot)/proc/self/cgroup cannot be read")
            return placement
        }
        var unifiedPath: String?
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {
                unifiedPath = path
                continue
            }
            let controllers = fields[1].split(separator: ",")
            for controller in ["pids", "memory"] where controllers.contains(Substring(controller)) {
                let home = normalized(hostRoot + "/sys/fs/cgroup/\(controller)" + path)
                let root = home + "/warden"
                if mkdir(root, 0o755) != 0 && errno != EEXIST || access(root + "/cgroup.procs", W_OK) != 0 {
                    placement.problems.append("cannot create a writable cgroup \(root): \(String(cString: strerror(errno)))")
                    continue
                }
                let found = Root(path: root, home: home, unified: false)
                if controller == "pids" { placement.pids = found } else { placement.memory = found }
            }
        }
        if let unifiedPath, placement.pids == nil || placement.memory == nil {
            placement.placeUnified(path: unifiedPath, hostRoot: hostRoot)
        }
        return placement
    }

    /// cgroup v2: the controllers must be enabled in `cgroup.subtree_control` of the harness's
    /// cgroup and of `warden` below it before any jail is placed. A cgroup that holds
    /// processes cannot enable them, so a harness alone in its cgroup moves itself into a
    /// leaf (`warden-harness`) first, as systemd asks of delegated services.
    private mutating func placeUnified(path: String, hostRoot: String) {
        let mount = [hostRoot + "/sys/fs/cgroup", hostRoot + "/sys/fs/cgroup/unified"].first {
            FileManager.default.fileExists(atPath: $0 + "/cgroup.controllers")
        }
        guard let mount else { return }
        let base = Self.normalized(mount + path)
        let available = Self.words(base + "/cgroup.controllers")
        var wanted: [String] = []
        if pids == nil {
            if available.contains("pids") { wanted.append("pids") } else { problems.append("the pids controller is not available in \(base)") }
        }
        if memory == nil {
            if available.contains("memory") { wanted.append("memory") } else { problems.append("the memory controller is not available in \(base)") }
        }
        guard !wanted.isEmpty else { return }
        var home = base
        var failure = Self.enable(wanted, in: base)
        if failure == EBUSY, Self.words(base + "/cgroup.procs") == [String(getpid())] {
            let leaf = base + "/warden-harness"
            if mkdir(leaf, 0o755) == 0 || errno == EEXIST, Self.write(String(getpid()), to: leaf + "/cgroup.procs") == 0 {
                home = leaf
                failure = Self.enable(wanted, in: base)
            }
        }
        if failure != 0 {
            problems.append("cannot enable \(wanted.joined(separator: ", ")) in \(base)/cgroup.subtree_control: \(String(cString: strerror(failure)))"
                + (failure == EBUSY ? " (the cgroup holds other processes; run warden in a cgroup of its own, e.g. `systemd-run --scope -p Delegate=yes warden ...`)" : ""))
            return
        }
        let root = base + "/warden"
        if mkdir(root, 0o755) != 0 && errno != EEXIST {
            problems.append("cannot create \(root): \(String(cString: strerror(errno)))")
            return
        }
        let rootFailure = Self.enable(wanted, in: root)
        if rootFailure != 0 {
            problems.append("cannot enable \(wanted.joined(separator: ", ")) in \(root)/cgroup.subtree_control: \(String(cString: strerror(rootFailure)))")
            return
        }
        let found = Root(path: root, home: home, unified: true)
        if wanted.contains("pids") { pids = found }
        if wanted.contains("memory") { memory = found }
    }

    /// Writes `+controller` for each one not yet enabled; returns 0 or the errno.
    private static func enable(_ controllers: [String], in directory: String) -> Int32 {
        let enabled = words(directory + "/cgroup.subtree_control")
        let missing = controllers.filter { !enabled.contains($0) }
        if missing.isEmpty { return 0 }
        return write(missing.map { "+" + $0 }.joined(separator: " "), to: directory + "/cgroup.subtree_control")
    }

    private static func write(_ text: String, to path: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { return errno }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return Glibc.write(fd, bytes, bytes.count) == bytes.count ? 0 : errno
    }

    private static func words(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
    }

    private static func normalized(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }
}

/// Reads a jail's out-of-memory kill counter from its memory cgroup, through a descriptor
/// opened at the first read (the helper creates the cgroup) and read again at offset 0.
final class MemoryCounter {
    private let file: String
    private var descriptor: Int32 = -1

    init(_ root: CgroupPlacement.Root, helper pid: pid_t) {
        file = root.jail(helper: pid) + (root.unified ? "/memory.events" : "/memory.oom_control")
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Processes the kernel killed at the jail's memory limit so far; 0 when unreadable
    /// (the jail's cgroup only disappears after the harness let go of the jail).
    func kills() -> Int {
        if descriptor < 0 { descriptor = open(file, O_RDONLY | O_CLOEXEC) }
        guard descriptor >= 0 else { return 0 }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return 0 }
        for line in String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst("oom_kill ".count)) ?? 0
        }
        return 0
    }
}
