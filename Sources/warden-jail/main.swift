// warden-jail: the single-threaded helper that builds one jail and execs a program in it.
//
// The harness is multithreaded, and a multithreaded process can neither unshare a user
// namespace nor run anything but async-signal-safe code after fork. So the harness
// posix_spawns this small program, which has no threads, no Foundation and no Dispatch.
//
// Descriptors from the harness:
//   0, 1, 2  the jailed program's stdin, stdout, stderr
//   3        the jail specification (see JailSpec below); read to EOF
//   4        status: close-on-exec; empty at EOF means the program was exec'd, otherwise
//            it carries one line "stage: message" describing why the jail could not start
//   5        lifeline: when the harness closes its end (or dies), the jail is killed
//   6        optional: a socket handed to the jailed program as its fd 3 (the persistent
//            shell's status channel; see ShellSession)
//
// The jail's pid 1 is cloned at once, before the specification comes, into the namespaces
// the harness's argument says to expect (a network namespace of its own, unless
// `--expect-host-network`): the clone then overlaps the harness's own work. The
// specification follows on a socket, and the pid 1 parses it while the supervisor makes the
// user namespaces and cgroups; a specification asking for other namespaces clones again.
// Once moved into its cgroups, pid 1 makes its cgroup namespace, so they are its root.
//
// The helper stays outside as a supervisor: it writes the uid/gid maps, waits for the
// jail's pid 1 and, once the harness has closed the lifeline (so the harness can still read
// the jail's cgroup counters after pid 1 died), exits with its status (128+signal when
// killed). Killing pid 1 of a pid namespace makes the kernel kill every process in it,
// setsid children included; pid 1 is killed too when the helper dies (PR_SET_PDEATHSIG).
//
// Two ways to build the user namespace:
// - an unprivileged harness: clone creates the namespaces at once and the jail's root is
//   the harness's own uid, the only id it may map;
// - a root harness ("map-root UID GID"): the jail's root must not be the host's root. The
//   jail's pid 1 builds the mounts as host root in namespaces owned by the host's user
//   namespace (so it can reach checkouts under 0700 directories), then enters a user
//   namespace where uid 0 is the unprivileged UID. The checkout is bound through an
//   id-mapped mount, so its files appear owned by the jail's root and stay writable.

import CJail
#if canImport(Glibc)
import Glibc
#endif

let specDescriptor: Int32 = 3
let statusDescriptor: Int32 = 4
let lifelineDescriptor: Int32 = 5
let passedDescriptor: Int32 = 6
/// Checked before anything else is opened, which could land on fd 6.
let passesSocket = fcntl(passedDescriptor, F_GETFD) >= 0
/// Exit status when the jail could not be built; the status pipe says why.
let setupFailureStatus: Int32 = 125

// MARK: - Failure reporting

/// Reports a setup failure on the status pipe and exits. Never returns.
func fail(_ stage: String, _ message: String, errno code: Int32 = 0) -> Never {
    var line = "\(stage): \(message)"
    if code != 0 { line += ": " + String(cString: strerror(code)) + " (errno \(code))" }
    line += "\n"
    _ = line.withCString { write(statusDescriptor, $0, strlen($0)) }
    _exit(setupFailureStatus)
}

/// Runs a call that returns -1 on failure and fails the jail with `stage` when it does.
@discardableResult
func check(_ stage: String, _ message: @autoclosure () -> String, _ result: Int32) -> Int32 {
    if result < 0 { fail(stage, message(), errno: errno) }
    return result
}

// MARK: - Specification

/// What the harness asked for, decoded from NUL-separated tokens on fd 3.
struct JailSpec {
    enum MountOp {
        /// `idmapped`: files owned by the source's owner appear owned by the jail's root.
        case bind(source: String, target: String, readOnly: Bool, optional: Bool, idmapped: Bool)
        case tmpfs(target: String, sizeBytes: UInt64, mode: String)
        case mask(target: String)
        case symlink(target: String, path: String)
        case dir(path: String)
        case dev
    }

    var outsideUID: UInt32 = 0
    var outsideGID: UInt32 = 0
    /// Host ids of the jail's root when they differ from the harness's (a root harness).
    var mappedRoot: (uid: UInt32, gid: UInt32)?
    /// The ids the jail's processes have inside its user namespace (an image's `User`); nil is
    /// root. Either way they are the same host ids: only the jail's view of them changes.
    var jailUser: (uid: UInt32, gid: UInt32)?
    /// User namespaces for id-mapped binds, by source path (opened by the supervisor).
    var idmapNamespaces: [String: Int32] = [:]
    /// An image as the root: its unpacked tree (read-only lower layer) and the jail's writable
    /// upper and work directories, all host paths.
    var imageRoot: (lower: String, upper: String, work: String)?
    var newNetwork = true
    var hostname = "warden"
    var mounts: [MountOp] = []
    var procMount = true
    var pidLimit: Int = 0
    /// Where the jail's cgroups are created, per controller.
    var pidsCgroup: String?
    var memoryCgroup: String?
    var memoryBytes: UInt64 = 0
    var rlimits: [(resource: Int32, soft: UInt64, hard: UInt64)] = []
    var seccomp: [UInt8] = []
    var workingDirectories: [String] = []
    var environment: [String] = []
    var arguments: [String] = []
}

func readAll(_ descriptor: Int32) -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            fail("spec", "cannot read the jail specification", errno: errno)
        }
        if count == 0 { break }
        bytes.append(contentsOf: buffer[0..<count])
    }
    return bytes
}

func hexBytes(_ text: String) -> [UInt8] {
    var result: [UInt8] = []
    result.reserveCapacity(text.utf8.count / 2)
    var high: UInt8? = nil
    for c in text.utf8 {
        let v: UInt8
        switch c {
        case 48...57: v = c - 48
        case 97...102: v = c - 87
        default: fail("spec", "bad hex in seccomp program")
        }
        if let h = high { result.append(h << 4 | v); high = nil } else { high = v }
    }
    return result
}

func rlimitResource(_ name: String) -> Int32 {
    switch name {
    case "cpu": return Int32(RLIMIT_CPU.rawValue)
    case "as": return Int32(RLIMIT_AS.rawValue)
    case "fsize": return Int32(RLIMIT_FSIZE.rawValue)
    case "nofile": return Int32(RLIMIT_NOFILE.rawValue)
    case "core": return Int32(RLIMIT_CORE.rawValue)
    case "nproc": return cjail_RLIMIT_NPROC
    case "stack": return Int32(RLIMIT_STACK.rawValue)
    default: fail("spec", "unknown rlimit \(name)")
    }
}

func parseSpec(_ bytes: [UInt8]) -> JailSpec {
    var tokens: [String] = []
    var start = 0
    for (index, byte) in bytes.enumerated() where byte == 0 {
        tokens.append(String(decoding: bytes[start..<index], as: UTF8.self))
        start = index + 1
    }
    var spec = JailSpec()
    var cursor = 0
    func next() -> String {
        guard cursor < tokens.count else { fail("spec", "truncated jail specification") }
        defer { cursor += 1 }
        return tokens[cursor]
    }
    func number(_ text: String) -> UInt64 {
        guard let value = UInt64(text) else { fail("spec", "not a number: \(text)") }
        return value
    }
    guard tokens.count >= 2, tokens[0] == "protocol", tokens[1] == String(CJAIL_PROTOCOL_VERSION) else {
        let asked = tokens.count >= 2 && tokens[0] == "protocol" ? tokens[1] : "none"
        fail("spec", "this warden-jail speaks protocol \(CJAIL_PROTOCOL_VERSION) but the harness asked for \(asked): "
            + "the helper is from another build; rebuild warden and warden-jail together")
    }
    cursor = 2
    while cursor < tokens.count {
        let op = next()
        switch op {
        case "uid": spec.outsideUID = UInt32(number(next()))
        case "gid": spec.outsideGID = UInt32(number(next()))
        case "net": spec.newNetwork = next() != "host"
        case "hostname": spec.hostname = next()
        case "root-image":
            let lower = next(), upper = next(), work = next()
            spec.imageRoot = (lower, upper, work)
        case "map-root":
            let uid = UInt32(number(next())), gid = UInt32(number(next()))
            spec.mappedRoot = (uid, gid)
        case "user":
            let uid = UInt32(number(next())), gid = UInt32(number(next()))
            spec.jailUser = (uid, gid)
        case "bind-ro", "bind-rw", "bind-ro-try", "bind-rw-try",
             "bind-ro-idmap", "bind-rw-idmap", "bind-ro-try-idmap", "bind-rw-try-idmap":
            let source = next(), target = next()
            spec.mounts.append(.bind(source: source, target: target, readOnly: op.hasPrefix("bind-ro"),
                                     optional: op.contains("-try"), idmapped: op.hasSuffix("-idmap")))
        case "tmpfs":
            let target = next(), size = number(next()), mode = next()
            spec.mounts.append(.tmpfs(target: target, sizeBytes: size, mode: mode))
        case "mask": spec.mounts.append(.mask(target: next()))
        case "symlink":
            let target = next(), path = next()
            spec.mounts.append(.symlink(target: target, path: path))
        case "dir": spec.mounts.append(.dir(path: next()))
        case "dev": spec.mounts.append(.dev)
        case "no-proc": spec.procMount = false
        case "pids": spec.pidLimit = Int(number(next()))
        case "pids-cgroup": spec.pidsCgroup = next()
        case "memory-cgroup": spec.memoryCgroup = next()
        case "memory": spec.memoryBytes = number(next())
        case "rlimit":
            let resource = rlimitResource(next()), soft = number(next()), hard = number(next())
            spec.rlimits.append((resource, soft, hard))
        case "seccomp": spec.seccomp = hexBytes(next())
        case "cwd": spec.workingDirectories.append(next())
        case "env": spec.environment.append(next())
        case "arg": spec.arguments.append(next())
        default: fail("spec", "unknown directive \(op)")
        }
    }
    if spec.arguments.isEmpty { fail("spec", "no program to run") }
    if spec.mappedRoot != nil && spec.outsideUID != 0 { fail("spec", "map-root needs a root harness") }
    return spec
}

// MARK: - File helpers (run inside the jail's mount namespace)

func writeFile(_ path: String, _ text: String) -> Int32 {
    let fd = open(path, O_WRONLY | O_CLOEXEC)
    if fd < 0 { return -1 }
    defer { close(fd) }
    let written = text.withCString { write(fd, $0, strlen($0)) }
    return written < 0 ? -1 : 0
}

/// `mkdir -p`, tolerating components that already exist.
func makeDirectories(_ path: String, mode: mode_t = 0o755) {
    var current = ""
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, mode) < 0 && errno != EEXIST {
            fail("mount", "cannot create directory \(current)", errno: errno)
        }
    }
}

func parentOf(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path[..<slash])
}

func fileType(_ path: String) -> mode_t? {
    var info = stat()
    if lstat(path, &info) < 0 { return nil }
    return info.st_mode & S_IFMT
}

/// Creates an empty mount point of the right kind (directory or file) at path.
func makeMountPoint(_ path: String, directory: Bool) {
    if directory {
        makeDirectories(path)
    } else {
        makeDirectories(parentOf(path))
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 && errno != EEXIST { fail("mount", "cannot create mount point \(path)", errno: errno) }
        if fd >= 0 { close(fd) }
    }
}

// MARK: - Building the jail (in the cloned child)

let oldRoot = "/oldroot"
let newRoot = "/newroot"

/// Binds a host path into the jail; through an id-mapped mount when `idmap` names the user
/// namespace that maps the source's owner to the jail's root.
func bindMount(source: String, target: String, readOnly: Bool, optional: Bool, idmap: Int32?) {
    let hostPath = oldRoot + source
    let jailPath = newRoot + target
    guard let type = fileType(hostPath) else {
        if optional { return }
        fail("mount", "bind source \(source) does not exist or cannot be reached", errno: errno)
    }
    if type == S_IFLNK {
        // Recreate the link instead of following it: /bin -> usr/bin on merged-/usr systems.
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink(hostPath, &buffer, buffer.count - 1)
        check("mount", "cannot read link \(source)", Int32(length < 0 ? -1 : 0))
        makeDirectories(parentOf(jailPath))
        let linkTarget = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if symlink(linkTarget, jailPath) < 0 && errno != EEXIST {
            fail("mount", "cannot create link \(target)", errno: errno)
        }
        return
    }
    makeMountPoint(jailPath, directory: type == S_IFDIR)
    if let namespace = idmap {
        check("mount", "cannot bind \(source) to \(target) through an id-mapped mount (the file system may not support "
              + "id-mapped mounts; the checkout must be on ext4, xfs, btrfs, tmpfs or another file system that does)",
              cjail_idmapped_bind(hostPath, jailPath, namespace, readOnly ? 1 : 0))
        return
    }
    check("mount", "cannot bind \(source) to \(target)",
          mount(hostPath, jailPath, nil, UInt(MS_BIND | MS_REC), nil))
    check("mount", "cannot set attributes on \(target)",
          cjail_mount_setattr(jailPath, readOnly ? 1 : 0, 1, 1, 1))
}

func mountTmpfs(_ target: String, sizeBytes: UInt64, mode: String, owner: (uid: UInt32, gid: UInt32)? = nil) {
    let jailPath = newRoot + target
    makeDirectories(jailPath)
    let flags = UInt(MS_NOSUID | MS_NODEV)
    var options = "size=\(sizeBytes),mode=\(mode)"
    if let owner { options += ",uid=\(owner.uid),gid=\(owner.gid)" }
    check("mount", "cannot mount tmpfs on \(target)", mount("tmpfs", jailPath, "tmpfs", flags, options))
}

func mask(_ target: String) {
    let jailPath = newRoot + target
    guard let type = fileType(jailPath) else { return }  // nothing there to hide
    if type == S_IFDIR {
        check("mask", "cannot hide \(target)",
              mount("tmpfs", jailPath, "tmpfs", UInt(MS_RDONLY | MS_NOSUID | MS_NODEV), "size=0,mode=0755"))
    } else if type == S_IFLNK {
        return  // a link is re-resolved inside the jail, where its target is masked on its own
    } else {
        check("mask", "cannot hide \(target)", mount(oldRoot + "/dev/null", jailPath, nil, UInt(MS_BIND), nil))
        // Not nodev: the mask is /dev/null itself, which reads as empty.
        check("mask", "cannot make \(target) read-only", cjail_mount_setattr(jailPath, 1, 1, 0, 0))
    }
}

/// A minimal /dev: a few device nodes bound from the host, a private devpts, links, /dev/shm.
func mountDevices() {
    mountTmpfs("/dev", sizeBytes: 1 << 20, mode: "0755")
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let jailPath = newRoot + "/dev/" + node
        makeMountPoint(jailPath, directory: false)
        check("dev", "cannot bind /dev/\(node)", mount(oldRoot + "/dev/" + node, jailPath, nil, UInt(MS_BIND), nil))
        check("dev", "cannot set attributes on /dev/\(node)", cjail_mount_setattr(jailPath, 0, 1, 0, 0))
    }
    makeDirectories(newRoot + "/dev/pts")
    check("dev", "cannot mount devpts",
          mount("devpts", newRoot + "/dev/pts", "devpts", UInt(MS_NOSUID | MS_NOEXEC),
                "newinstance,ptmxmode=0666,mode=620"))
    for (link, target) in [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                           ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        check("dev", "cannot create /dev/\(link)", symlink(target, newRoot + "/dev/" + link))
    }
    mountTmpfs("/dev/shm", sizeBytes: 64 << 20, mode: "1777")
}

/// /proc entries that stay visible but read-only (the README's jail section says why each is).
let procReadOnly = ["sys", "irq", "bus", "fs"]

/// /proc entries that describe the host rather than the jail, hidden as Docker and runc hide
/// them, plus the kernel's memory, symbol, lock, interrupt and boot-identity views.
let procMasked = [
    "kcore", "kallsyms", "kmsg", "keys", "key-users", "timer_list", "timer_stats", "sched_debug", "schedstat",
    "latency_stats", "kpagecount", "kpageflags", "kpagecgroup", "vmallocinfo", "slabinfo", "pagetypeinfo",
    "iomem", "interrupts", "softirqs", "locks", "modules", "cmdline", "bootconfig", "sysrq-trigger",
    "sys/kernel/random/boot_id", "acpi", "asound", "scsi", "driver", "dynamic_debug", "pressure", "fb", "tty/driver",
]

func mountProc(pidLimit: Int) -> Bool {
    let jailPath = newRoot + "/proc"
    makeDirectories(jailPath)
    check("proc", "cannot mount a fresh /proc (inside a container, run with --privileged or give it CAP_SYS_ADMIN and an unmasked /proc)",
          mount("proc", jailPath, "proc", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), nil))
    var pidLimitHeld = false
    if pidLimit > 0 {
        // Kernels >= 6.14 give each pid namespace its own pid_max (minimum 301).
        pidLimitHeld = writeFile(jailPath + "/sys/kernel/pid_max", "\(max(pidLimit, 301))\n") == 0
    }
    // The kernel knobs stay visible but read-only, as in every container runtime.
    for sub in procReadOnly {
        let path = jailPath + "/" + sub
        guard fileType(path) != nil else { continue }
        check("proc", "cannot bind /proc/\(sub)", mount(path, path, nil, UInt(MS_BIND | MS_REC), nil))
        check("proc", "cannot make /proc/\(sub) read-only", cjail_mount_setattr(path, 1, 1, 1, 1))
    }
    // Host-wide kernel state: hidden (files read empty, directories are empty). An entry the
    // kernel keeps root-only needs no mount: the jail's processes are never the host's root.
    for path in procMasked {
        var info = stat()
        if lstat(jailPath + "/" + path, &info) == 0 && info.st_mode & S_IROTH != 0 { mask("/proc/" + path) }
    }
    return pidLimitHeld
}

/// The image as the jail's root: an overlay of the shared unpacked tree (never written) and the
/// jail's own upper directory. An unprivileged harness mounts it inside its user namespace
/// (kernel >= 5.11), where overlayfs keeps its metadata in user.* xattrs.
func mountImageRoot(_ image: (lower: String, upper: String, work: String), unprivileged: Bool) {
    var options = "lowerdir=\(oldRoot + image.lower),upperdir=\(oldRoot + image.upper),workdir=\(oldRoot + image.work)"
    if unprivileged { options += ",userxattr" }
    check("mount", "cannot mount the image's overlay at the jail root (overlayfs needs kernel >= 5.11 in a user namespace, and "
          + "the writable layer must be on a file system overlayfs accepts as upper: ext4, xfs, btrfs or tmpfs); where it "
          + "cannot be, a profile with \"image_root\": \"read-only\" runs the image read-only",
          mount("overlay", newRoot, "overlay", UInt(MS_NOSUID | MS_NODEV), options))
}

func buildFilesystem(_ spec: JailSpec) -> Bool {
    // Nothing we mount may propagate back to the host.
    check("mount", "cannot make mounts private", mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil))
    // The bubblewrap trick: a tmpfs on /tmp becomes the root, and the old root stays
    // reachable at /oldroot with its own /tmp unhidden, so checkouts under /tmp still bind.
    check("mount", "cannot mount the staging tmpfs", mount("tmpfs", "/tmp", "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755"))
    check("mount", "cannot enter the staging tmpfs", chdir("/tmp"))
    check("mount", "cannot create newroot", mkdir("newroot", 0o755))
    if spec.imageRoot == nil {
        check("mount", "cannot mount the jail root",
              mount("tmpfs", "newroot", "tmpfs", UInt(MS_NOSUID | MS_NODEV), "size=16m,mode=0755"))
    }
    check("mount", "cannot create oldroot", mkdir("oldroot", 0o755))
    check("pivot_root", "cannot pivot into the staging tmpfs", cjail_pivot_root("/tmp", "/tmp/oldroot"))
    check("mount", "cannot enter the staging root", chdir("/"))
    if let image = spec.imageRoot { mountImageRoot(image, unprivileged: spec.mappedRoot == nil && spec.outsideUID != 0) }

    for op in spec.mounts {
        switch op {
        case let .bind(source, target, readOnly, optional, idmapped):
            bindMount(source: source, target: target, readOnly: readOnly, optional: optional,
                      idmap: idmapped ? spec.idmapNamespaces[source] : nil)
        case let .tmpfs(target, sizeBytes, mode):
            // As host root, a tmpfs would belong to the host's root: give it to the jail's.
            mountTmpfs(target, sizeBytes: sizeBytes, mode: mode, owner: spec.mappedRoot)
        case let .mask(target):
            mask(target)
        case let .symlink(target, path):
            makeDirectories(parentOf(newRoot + path))
            if symlink(target, newRoot + path) < 0 && errno != EEXIST {
                fail("mount", "cannot create link \(path)", errno: errno)
            }
        case let .dir(path):
            makeDirectories(newRoot + path)
        case .dev:
            mountDevices()
        }
    }
    // /proc must be mounted while a fully visible procfs (the host's) is still in this namespace.
    let pidLimitHeld = spec.procMount ? mountProc(pidLimit: spec.pidLimit) : false

    check("mount", "cannot detach the old root", umount2(oldRoot, Int32(MNT_DETACH)))
    check("pivot_root", "cannot enter the jail root", chdir(newRoot))
    check("pivot_root", "cannot pivot into the jail root", cjail_pivot_root(".", "."))
    check("pivot_root", "cannot detach the staging root", umount2(".", Int32(MNT_DETACH)))
    check("pivot_root", "cannot enter /", chdir("/"))
    // An image's root is the jail's writable layer; the host-rootfs staging tmpfs is read-only.
    if spec.imageRoot == nil {
        check("mount", "cannot make the jail root read-only", cjail_mount_setattr("/", 1, 1, 1, 0))
    }
    return pidLimitHeld
}

/// Everything the jail's pid 1 does once it may build the jail, up to the exec. `channel`
/// hangs up when the supervisor dies.
func enterJail(_ spec: JailSpec, channel: Int32, jailNamespace: Int32, cgroupHeld: Bool) -> Never {
    let pidLimitHeld = buildFilesystem(spec)
    if spec.pidLimit > 0 && !cgroupHeld && !pidLimitHeld {
        if spec.outsideUID == 0 && spec.mappedRoot == nil {
            fail("limits", "cannot cap the number of processes: running as root, with no writable pids cgroup "
                 + "(/sys/fs/cgroup/pids or a delegated cgroup v2 subtree) and a kernel older than 6.14 "
                 + "(no per-namespace pid_max); refusing to run unprotected. Run as an unprivileged user "
                 + "(RLIMIT_NPROC then holds) or give the harness a writable pids cgroup")
        }
        let limit = UInt64(spec.pidLimit)
        var value = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
        check("limits", "cannot set the process limit", setrlimit(__rlimit_resource_t(UInt32(cjail_RLIMIT_NPROC)), &value))
    }

    check("uts", "cannot set the hostname", sethostname(spec.hostname, spec.hostname.utf8.count))
    if spec.newNetwork {
        check("net", "cannot bring the jail's loopback up", cjail_loopback_up())
    }
    if spec.outsideUID == 0 {
        check("userns", "cannot drop supplementary groups", setgroups(0, nil))
    }
    if spec.mappedRoot != nil {
        // From here on the jail's root is the unprivileged host id: mounts, hostname and
        // network are done, and the namespaces holding them stay owned by the host.
        check("userns", "cannot enter the jail's user namespace", cjail_enter_userns(jailNamespace))
    }
    if spec.jailUser == nil {
        check("userns", "cannot become gid 0 in the jail", cjail_setresgid(0))
        check("userns", "cannot become uid 0 in the jail", cjail_setresuid(0))
    }

    for limit in spec.rlimits {
        var value = rlimit(rlim_cur: rlim_t(limit.soft), rlim_max: rlim_t(limit.hard))
        check("limits", "cannot set rlimit \(limit.resource)", setrlimit(__rlimit_resource_t(UInt32(limit.resource)), &value))
    }

    var entered = false
    for directory in spec.workingDirectories where chdir(directory) == 0 {
        entered = true
        break
    }
    if !entered { check("cwd", "cannot enter \(spec.workingDirectories.first ?? "/")", chdir("/")) }
    // A session of its own: no controlling terminal, so /dev/tty opens nothing and no jailed
    // process can make itself the foreground of the terminal the harness runs in.
    check("session", "cannot start a session", setsid())

    if let user = spec.jailUser {
        // Changing to another uid needs CAP_SETUID, and dropping the bounding set CAP_SETPCAP,
        // so both happen in one step: bounding set, then the ids, then every capability.
        check("caps", "cannot drop capabilities and become uid \(user.uid) gid \(user.gid)", cjail_drop_capabilities_as(user.uid, user.gid))
    } else {
        check("caps", "cannot drop capabilities", cjail_drop_capabilities())
    }
    check("caps", "cannot set no_new_privs", cjail_set_no_new_privs())
    if !spec.seccomp.isEmpty {
        let loaded = spec.seccomp.withUnsafeBytes { cjail_load_seccomp($0.baseAddress, $0.count) }
        check("seccomp", "cannot load the syscall filter", loaded)
    }
    // Reset what the helper inherited: every signal to its default, nothing blocked.
    var empty = sigset_t()
    sigemptyset(&empty)
    sigprocmask(SIG_SETMASK, &empty, nil)
    for signal in 1..<cjail_sigrtmax() where signal != SIGKILL && signal != SIGSTOP {
        Glibc.signal(signal, SIG_DFL)
    }
    // Changing the effective uid cleared the parent-death signal: set it again, then make sure
    // the supervisor did not die before it was set (its end of `channel` hangs up when it does).
    check("setup", "cannot tie the jail to its supervisor", cjail_die_with_parent())
    var hangup = pollfd(fd: channel, events: 0, revents: 0)
    if poll(&hangup, 1, 0) != 0 { _exit(setupFailureStatus) }
    // Only stdio, the close-on-exec status pipe and the passed socket (as fd 3) survive.
    if passesSocket {
        check("setup", "cannot pass the status socket", dup2(passedDescriptor, 3))
    }
    _ = cjail_close_from(statusDescriptor + 1)

    let argv = spec.arguments.map { strdup($0) } + [nil]
    let envp = spec.environment.map { strdup($0) } + [nil]
    execve(spec.arguments[0], argv, envp)
    fail("exec", "cannot execute \(spec.arguments[0])", errno: errno)
}

// MARK: - Cgroups

/// Creates the jail's cgroup in each hierarchy (`warden-<helper pid>`, where the harness looks
/// for its counters) and sets the limits. A limit that was asked for and cannot be set fails
/// the jail. Returns the directories.
func makeCgroups(_ spec: JailSpec) -> [String] {
    var made: [String] = []
    let name = "warden-\(getpid())"
    /// Fails the jail, removing the cgroups made so far.
    func abandon(_ message: String, errno code: Int32 = 0) -> Never {
        removeCgroups(made)
        fail("cgroup", message, errno: code)
    }
    func check(_ message: @autoclosure () -> String, _ result: Int32) {
        if result < 0 { abandon(message(), errno: errno) }
    }
    func create(_ root: String) -> String {
        let directory = root + "/" + name
        if !made.contains(directory) {
            if mkdir(directory, 0o755) < 0 && errno != EEXIST { abandon("cannot create \(directory)", errno: errno) }
            made.append(directory)
        }
        return directory
    }
    if spec.pidLimit > 0, let root = spec.pidsCgroup {
        let directory = create(root)
        guard fileType(directory + "/pids.max") != nil else {
            abandon("cannot cap the number of processes: \(directory) has no pids.max (the pids controller is not "
                 + "enabled in the cgroup.subtree_control of \(root)); refusing to run without the cap")
        }
        check("cannot set \(directory)/pids.max", writeFile(directory + "/pids.max", "\(spec.pidLimit)\n"))
    }
    if spec.memoryBytes > 0, let root = spec.memoryCgroup {
        let directory = create(root)
        let limit = "\(spec.memoryBytes)\n"
        if fileType(directory + "/memory.limit_in_bytes") != nil {  // cgroup v1
            check("cannot set \(directory)/memory.limit_in_bytes", writeFile(directory + "/memory.limit_in_bytes", limit))
            // Memory plus swap at the same figure: no swap (absent without swap accounting).
            if fileType(directory + "/memory.memsw.limit_in_bytes") != nil {
                check("cannot set \(directory)/memory.memsw.limit_in_bytes",
                      writeFile(directory + "/memory.memsw.limit_in_bytes", limit))
            }
        } else if fileType(directory + "/memory.max") != nil {  // cgroup v2
            check("cannot set \(directory)/memory.max", writeFile(directory + "/memory.max", limit))
            if fileType(directory + "/memory.swap.max") != nil {
                check("cannot set \(directory)/memory.swap.max", writeFile(directory + "/memory.swap.max", "0\n"))
            }
        } else {
            abandon("cannot cap the jail's memory: \(directory) has no memory.max or memory.limit_in_bytes (the memory "
                 + "controller is not enabled in \(root)); refusing to run without the cap")
        }
    }
    return made
}

/// Moves the jail's pid 1 into its cgroups before it runs anything of the jail's. On failure
/// it kills and reaps the jail's pid 1, removes the cgroups and fails the jail.
func moveIntoCgroups(_ child: pid_t, _ cgroups: [String]) {
    for directory in cgroups where writeFile(directory + "/cgroup.procs", "\(child)\n") < 0 {
        let code = errno
        killAndReap(child)
        removeCgroups(cgroups)
        fail("cgroup", "cannot move the jail into \(directory)", errno: code)
    }
}

/// Opens the user namespaces a root harness's jail needs: the jail's own (uid 0 is the
/// unprivileged host id) and one per owner of an id-mapped bind's source, which maps that
/// owner to the jail's root. Returns the jail's namespace.
func openUserNamespaces(_ spec: inout JailSpec) -> Int32 {
    guard let root = spec.mappedRoot else { return -1 }
    let inside = spec.jailUser ?? (0, 0)
    let jailNamespace = cjail_make_userns(inside.uid, root.uid, inside.gid, root.gid)
    check("userns", "cannot create the jail's user namespace", jailNamespace)
    // The jail's namespace maps root-owned sources to the jail's identity only when that is root.
    var byOwner: [UInt64: Int32] = spec.jailUser == nil ? [0: jailNamespace] : [:]
    for op in spec.mounts {
        guard case let .bind(source, _, _, optional, true) = op else { continue }
        var info = stat()
        if stat(source, &info) < 0 {
            if optional { continue }
            fail("mount", "bind source \(source) does not exist or cannot be reached", errno: errno)
        }
        let owner = UInt64(info.st_uid) << 32 | UInt64(info.st_gid)
        if byOwner[owner] == nil {
            let namespace = cjail_make_userns(info.st_uid, root.uid, info.st_gid, root.gid)
            check("userns", "cannot create an id mapping for \(source)", namespace)
            byOwner[owner] = namespace
        }
        spec.idmapNamespaces[source] = byOwner[owner]
    }
    return jailNamespace
}

// MARK: - The jail's pid 1 until it may build the jail

/// The jail's pid 1 and the supervisor's end of the channel to it: a SOCK_SEQPACKET socket
/// carrying the specification (to a process cloned before it arrived), then one message when
/// the process may build the jail, with the user namespace descriptors it needs.
struct ClonedJail {
    let pid: pid_t
    let channel: Int32
    let flags: UInt
}

/// The namespaces a jail's pid 1 is cloned into. Its cgroup namespace comes later, once the
/// process is in the jail's cgroups, so that those are the namespace's root.
func namespaceFlags(mappedRoot: Bool, network: Bool) -> UInt {
    var flags = cjail_CLONE_NEWNS | cjail_CLONE_NEWPID | cjail_CLONE_NEWIPC | cjail_CLONE_NEWUTS
    if !mappedRoot { flags |= cjail_CLONE_NEWUSER }
    if network { flags |= cjail_CLONE_NEWNET }
    return flags
}

/// Clones the jail's pid 1 into `flags`' namespaces. It waits on the channel for its
/// specification when `spec` is nil. Nil when the clone fails (errno says why).
func cloneJail(_ flags: UInt, spec: JailSpec?) -> ClonedJail? {
    var pair: [Int32] = [-1, -1]
    guard cjail_seqpacket_pair(&pair) == 0 else { return nil }
    let child = cjail_clone(flags)
    if child < 0 {
        let code = errno
        close(pair[0])
        close(pair[1])
        errno = code
        return nil
    }
    if child == 0 {
        close(pair[0])
        jailProcess(channel: pair[1], spec: spec)
    }
    close(pair[1])
    return ClonedJail(pid: child, channel: pair[0], flags: flags)
}

/// The idmapped binds of `spec`, in order: the go message says for each whether a namespace
/// descriptor comes with it.
func idmappedSources(_ spec: JailSpec) -> [String] {
    spec.mounts.compactMap { op in
        guard case let .bind(source, _, _, _, true) = op else { return nil }
        return source
    }
}

/// Everything the jail's pid 1 does between its clone and building the jail: it learns the
/// specification (unless cloned after it), then waits until the supervisor has mapped its
/// ids and moved it into its cgroups, and takes the user namespaces it is sent.
func jailProcess(channel: Int32, spec known: JailSpec?) -> Never {
    // Die with the supervisor, which follows the creating thread: the helper has only one.
    check("setup", "cannot tie the jail to its supervisor", cjail_die_with_parent())
    close(lifelineDescriptor)
    var descriptors = [Int32](repeating: -1, count: Int(CJAIL_MAX_PASSED_DESCRIPTORS))
    var count: Int32 = 0
    var spec: JailSpec
    if let known {
        spec = known
    } else {
        close(specDescriptor)
        var bytes = [UInt8](repeating: 0, count: maximumEarlySpecification)
        let received = cjail_receive_with_descriptors(channel, &bytes, bytes.count, &descriptors, &count)
        // Nothing came: the supervisor clones another pid 1 (or died); this one was never used.
        if received == 0 { _exit(0) }
        check("spec", "cannot receive the jail specification", Int32(received < 0 ? -1 : 0))
        spec = parseSpec(Array(bytes[..<received]))
    }
    let sources = idmappedSources(spec)
    var carried = [UInt8](repeating: 0, count: 1 + sources.count)
    let received = cjail_receive_with_descriptors(channel, &carried, carried.count, &descriptors, &count)
    if received <= 0 { fail("userns", "the supervisor ended before the jail's ids were mapped", errno: received < 0 ? errno : 0) }
    guard received == carried.count, Int(count) == carried.filter({ $0 == 1 }).count else {
        fail("setup", "the supervisor sent \(count) namespaces for \(received) marks")
    }
    var next = 0
    func take() -> Int32 {
        defer { next += 1 }
        return descriptors[next]
    }
    let jailNamespace = carried[0] == 1 ? take() : -1
    for (index, source) in sources.enumerated() where carried[1 + index] == 1 { spec.idmapNamespaces[source] = take() }
    check("cgroup", "cannot enter a cgroup namespace of the jail's own", cjail_unshare_cgroup())
    enterJail(spec, channel: channel, jailNamespace: jailNamespace, cgroupHeld: spec.pidLimit > 0 && spec.pidsCgroup != nil)
}

/// The largest specification sent to a pid 1 cloned before it (the harness sends at most
/// 60,000 bytes); a larger one goes to a pid 1 cloned after it.
let maximumEarlySpecification = 65536

/// Sends `spec` and the go message with `namespaces` to the jail's pid 1: one mark for the
/// jail's own user namespace, then one per idmapped bind, 1 where a descriptor comes.
func release(_ jail: ClonedJail, _ spec: JailSpec, jailNamespace: Int32) -> Bool {
    var carried: [UInt8] = [jailNamespace >= 0 ? 1 : 0]
    var namespaces: [Int32] = jailNamespace >= 0 ? [jailNamespace] : []
    for source in idmappedSources(spec) {
        if let namespace = spec.idmapNamespaces[source] {
            carried.append(1)
            namespaces.append(namespace)
        } else {
            carried.append(0)
        }
    }
    guard namespaces.count <= Int(CJAIL_MAX_PASSED_DESCRIPTORS) else { return false }
    return cjail_send_with_descriptors(jail.channel, carried, carried.count, namespaces, Int32(namespaces.count)) == carried.count
}

/// Ends a pid 1 that will not be used: the channel closes before its specification came.
func abandon(_ jail: ClonedJail) {
    close(jail.channel)
    reap(jail.pid)
}

/// Kills a jail's pid 1 that must not run on, and waits until it is gone (so its cgroups
/// can be removed).
func killAndReap(_ child: pid_t) {
    kill(child, SIGKILL)
    reap(child)
}

func reap(_ child: pid_t) {
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
}

// MARK: - Supervisor (outside the jail)

func supervise() -> Never {
    // posix_spawn's dup2 cleared close-on-exec; the status pipe must close when bash is exec'd.
    _ = fcntl(statusDescriptor, F_SETFD, FD_CLOEXEC)
    // The jail's pid 1 is cloned before the specification comes, into the namespaces the
    // harness said to expect: making them (the network namespace alone takes about 1 ms)
    // then overlaps the harness's own work. Another specification clones again.
    let expectsHostNetwork = CommandLine.arguments.dropFirst().contains("--expect-host-network")
    var early = cloneJail(namespaceFlags(mappedRoot: geteuid() == 0, network: !expectsHostNetwork), spec: nil)
    let bytes = readAll(specDescriptor)
    close(specDescriptor)
    var spec = parseSpec(bytes)
    let flags = namespaceFlags(mappedRoot: spec.mappedRoot != nil, network: spec.newNetwork)
    if let cloned = early {
        // It parses its copy while the user namespaces and cgroups are made here.
        let sent = cloned.flags == flags && bytes.count <= maximumEarlySpecification
            && cjail_send_with_descriptors(cloned.channel, bytes, bytes.count, nil, 0) == bytes.count
        if !sent {
            abandon(cloned)
            early = nil
        }
    }

    let jailNamespace = openUserNamespaces(&spec)
    let cgroups = makeCgroups(spec)
    guard let jail = early ?? cloneJail(flags, spec: spec) else {
        let code = errno
        removeCgroups(cgroups)
        fail("clone", "cannot create the jail's namespaces (user namespaces may be disabled: check "
             + "/proc/sys/user/max_user_namespaces and kernel.unprivileged_userns_clone, or a container's seccomp profile)",
             errno: code)
    }
    let child = jail.pid
    moveIntoCgroups(child, cgroups)
    if passesSocket { close(passedDescriptor) }  // the jail's copy only

    if spec.mappedRoot == nil {
        // Map the jail's root to the harness's user; as root, supplementary groups can be dropped.
        if spec.outsideUID != 0 {
            check("userns", "cannot deny setgroups", writeFile("/proc/\(child)/setgroups", "deny\n"))
        }
        let inside = spec.jailUser ?? (0, 0)
        check("userns", "cannot write the uid map", writeFile("/proc/\(child)/uid_map", "\(inside.uid) \(spec.outsideUID) 1\n"))
        check("userns", "cannot write the gid map", writeFile("/proc/\(child)/gid_map", "\(inside.gid) \(spec.outsideGID) 1\n"))
    }
    // The channel stays open for the supervisor's lifetime: the jail sees it hang up if we die.
    if !release(jail, spec, jailNamespace: jailNamespace) {
        let code = errno
        killAndReap(child)
        removeCgroups(cgroups)
        fail("setup", "cannot hand the jail its namespaces", errno: code)
    }
    if jailNamespace >= 0 { close(jailNamespace) }
    for namespace in Set(spec.idmapNamespaces.values) where namespace != jailNamespace { close(namespace) }
    close(statusDescriptor)  // the child keeps its own copy until exec
    close(0)
    close(1)
    close(2)

    let childDescriptor = cjail_pidfd_open(child)
    var fds = [pollfd(fd: lifelineDescriptor, events: Int16(POLLIN), revents: 0),
               pollfd(fd: childDescriptor, events: Int16(POLLIN), revents: 0)]
    var status: Int32 = 0
    var exited = false
    while true {
        let ready = poll(&fds, childDescriptor >= 0 ? 2 : 1, childDescriptor >= 0 ? -1 : 100)
        if ready < 0 && errno != EINTR { break }
        if fds[0].revents != 0 {
            // The harness closed the lifeline (timeout, cancellation, the end or its own death).
            kill(child, SIGKILL)
            break
        }
        if childDescriptor < 0 || fds[1].revents != 0 {
            if waitpid(child, &status, WNOHANG) == child {
                exited = true
                break
            }
        }
    }
    if exited {
        // Pid 1 ended on its own. The cgroups stay until the harness is done reading their
        // counters (an out-of-memory kill) and closes the lifeline.
        var lifeline = pollfd(fd: lifelineDescriptor, events: Int16(POLLIN), revents: 0)
        while poll(&lifeline, 1, -1) < 0 && errno == EINTR {}
    } else {
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    }
    removeCgroups(cgroups)
    _exit(exitCode(status))
}

/// Removes the jail's cgroups; the kernel may still be tearing the last processes down.
func removeCgroups(_ directories: [String]) {
    for directory in directories {
        var attempts = 0
        while rmdir(directory) < 0 && errno == EBUSY && attempts < 200 {
            usleep(1000)
            attempts += 1
        }
    }
}

func exitCode(_ status: Int32) -> Int32 {
    let signal = status & 0x7f
    if signal == 0 { return (status >> 8) & 0xff }
    return 128 + signal
}

supervise()
