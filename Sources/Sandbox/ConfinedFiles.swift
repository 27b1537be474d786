import CJail
import Foundation
import WardenCore

/// The jail's filesystem as its shell sees it, for the agent's `edit`, `create` and
/// `submit PATH`: a relative path starts at the shell's working directory, an absolute one at
/// the jail's own root (its private /tmp included), and every `..` and symlink is resolved
/// inside that root (openat2 RESOLVE_IN_ROOT on the jail's root), never reaching the host.
///
/// Only regular files are read or written: a path is opened with O_PATH first (which never
/// blocks, whatever the file is), checked with fstat, and only then reopened for I/O through
/// /proc/self/fd, non-blocking. Values exist only inside `ShellSession.withJailFiles`, on a
/// thread of their own that acts with the jail's identity.
public struct JailFiles {
    /// Files larger than this are refused: they are read whole into memory.
    static let maximumBytes = 64 << 20
    /// An O_PATH descriptor of the jail's "/".
    let root: Int32
    /// The shell's working directory, a path inside the jail.
    public let cwd: String

    /// The path as the jail names it: relative paths are taken from the shell's directory.
    func jailPath(_ path: String) throws -> String {
        guard !path.isEmpty else { throw WardenError("files.path", "the path is empty") }
        guard !path.utf8.contains(0) else { throw WardenError("files.path", "the path contains a NUL byte") }
        return path.hasPrefix("/") ? path : (cwd.hasSuffix("/") ? cwd : cwd + "/") + path
    }

    /// The bytes of a regular file.
    public func read(_ path: String) throws -> [UInt8] {
        let handle = try openRegular(path)
        defer { close(handle) }
        let fd = try reopen(handle, O_RDONLY, path)
        defer { close(fd) }
        return try readAll(fd, path)
    }

    /// Reads a regular file, lets `transform` compute its new content, and writes that back
    /// into the same file (the same inode, so owner, mode and hard links stay).
    public func update(_ path: String, _ transform: ([UInt8]) throws -> [UInt8]) throws {
        let handle = try openRegular(path)
        defer { close(handle) }
        let reader = try reopen(handle, O_RDONLY, path)
        let original: [UInt8]
        do {
            defer { close(reader) }
            original = try readAll(reader, path)
        }
        let updated = try transform(original)
        let writer = try reopen(handle, O_WRONLY, path)
        defer { close(writer) }
        try writeAll(writer, updated, path)
        guard ftruncate(writer, off_t(updated.count)) == 0 else {
            throw failure("truncate", path, note: " after writing the new content; the file may hold stale bytes at its end")
        }
    }

    /// Creates a new regular file, and any missing parent directories; fails if the path exists.
    public func create(_ path: String, content: [UInt8]) throws {
        let absolute = try jailPath(path)
        guard !absolute.hasSuffix("/") else { throw WardenError("files.path", "\(path) names a directory, not a file") }
        var components = absolute.split(separator: "/").map(String.init)
        let name = components.removeLast()
        var parent = "/"
        var directory = try openDirectory("/", displayPath: path)
        defer { close(directory) }
        for component in components {
            parent += (parent == "/" ? "" : "/") + component
            var next = cjail_open_in_root(root, parent, cjail_O_PATH | O_DIRECTORY, 0)
            if next < 0 && errno == ENOENT {
                if mkdirat(directory, component, 0o755) < 0 && errno != EEXIST { throw failure("create the directory", parent) }
                next = cjail_open_in_root(root, parent, cjail_O_PATH | O_DIRECTORY, 0)
            }
            guard next >= 0 else { throw failure("enter the directory", parent) }
            close(directory)
            directory = next
        }
        // O_EXCL never follows a symlink and never opens an existing FIFO or device.
        let fd = openat(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if errno == EEXIST { throw WardenError("files.exists", "\(path) already exists") }
            throw failure("create", path)
        }
        defer { close(fd) }
        try writeAll(fd, content, path)
    }

    private func openDirectory(_ absolute: String, displayPath: String) throws -> Int32 {
        let fd = cjail_open_in_root(root, absolute, cjail_O_PATH | O_DIRECTORY, 0)
        guard fd >= 0 else { throw failure("open", displayPath) }
        return fd
    }

    /// An O_PATH descriptor of a regular file; anything else is refused without being opened.
    private func openRegular(_ path: String) throws -> Int32 {
        let fd = cjail_open_in_root(root, try jailPath(path), cjail_O_PATH, 0)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw WardenError("files.missing", "\(path) does not exist") }
            throw failure("open", path)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = failure("inspect", path)
            close(fd)
            throw error
        }
        let kind: String? = switch info.st_mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        default: "not a regular file"
        }
        if let kind {
            close(fd)
            throw WardenError("files.type", "\(path) is \(kind), not a regular file")
        }
        if info.st_size > Self.maximumBytes {
            close(fd)
            throw WardenError("files.size", "\(path) is larger than \(Self.maximumBytes >> 20) MiB, more than a file tool handles")
        }
        return fd
    }

    /// Opens the file an O_PATH descriptor holds for I/O; permissions are checked now, with
    /// the thread's (the jail's) identity, and a read-only mount refuses writing.
    private func reopen(_ handle: Int32, _ mode: Int32, _ path: String) throws -> Int32 {
        let fd = Glibc.open("/proc/self/fd/\(handle)", mode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw failure(mode == O_RDONLY ? "read" : "write", path) }
        return fd
    }

    private func readAll(_ fd: Int32, _ path: String) throws -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw failure("read", path) }
            if count == 0 { return data }
            data += buffer[0..<count]
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], _ path: String) throws {
        try bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let count = pwrite(fd, base + offset, buffer.count - offset, off_t(offset))
                if count < 0 && errno == EINTR { continue }
                if count < 0 {
                    throw failure("write", path, note: offset > 0 ? " after \(offset) bytes; the file is incomplete" : "")
                }
                offset += count
            }
        }
    }

    private func failure(_ what: String, _ path: String, note: String = "") -> WardenError {
        let code = errno
        switch code {
        case EROFS:
            return WardenError("files.readOnly", "cannot \(what) \(path): that place is read-only in the sandbox\(note)")
        case EACCES, EPERM:
            return WardenError("files.denied", "cannot \(what) \(path): permission denied, as it would be for a command in the sandbox\(note)")
        case ELOOP:
            return WardenError("files.loop", "cannot \(what) \(path): too many levels of symbolic links, or a /proc magic link")
        default:
            return WardenError("files.io", "cannot \(what) \(path): \(String(cString: strerror(code)))\(note)")
        }
    }
}

extension ShellSession {
    /// Runs `body` with the jail's filesystem, starting the shell first when none is running,
    /// on a thread of its own that acts with `identity` (filesystem uid and gid, no
    /// supplementary groups, no effective capabilities) and ends with `body`. Neither the
    /// caller nor a thread of the concurrency pool blocks, and no other thread changes identity.
    /// `identity` defaults to the jail's own (`configuration.hostIdentity`).
    public func withJailFiles<T: Sendable>(identity: JailIdentity? = nil,
                                           _ body: @escaping @Sendable (JailFiles) throws -> T) async throws -> T {
        let identity = identity ?? configuration.hostIdentity
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    let (root, cwd) = try self.withRunningJail { helper, cwd in (try JailRoot.open(helperPID: helper.pid), cwd) }
                    defer { Glibc.close(root) }
                    guard cjail_thread_act_as(identity.uid, identity.gid) == 0 else {
                        throw WardenError("files.identity", "cannot act as uid \(identity.uid), gid \(identity.gid): \(String(cString: strerror(errno)))")
                    }
                    return try body(JailFiles(root: root, cwd: cwd))
                })
            }
            thread.start()
        }
    }
}

/// The root directory of a running jail, reached through /proc/PID/root of its pid 1 (the
/// helper's only child).
enum JailRoot {
    static func open(helperPID: pid_t) throws -> Int32 {
        // Pids are handed out in order, so the child is almost always just above the helper.
        for candidate in (helperPID + 1)...(helperPID + 64) {
            if let root = root(of: candidate, parent: helperPID) { return root }
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            if let pid = pid_t(entry), let root = root(of: pid, parent: helperPID) { return root }
        }
        throw WardenError("files.jail", "the jail's shell is not running (no child of helper \(helperPID))")
    }

    /// The root of `pid` if its parent is `parent`. The /proc directory is opened first, so
    /// the check and the root belong to one process even if the pid is reused meanwhile.
    private static func root(of pid: pid_t, parent: pid_t) -> Int32? {
        let directory = Glibc.open("/proc/\(pid)", cjail_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return nil }
        defer { close(directory) }
        let statFD = openat(directory, "stat", O_RDONLY | O_CLOEXEC)
        guard statFD >= 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(statFD, $0.baseAddress, $0.count) }
        close(statFD)
        guard count > 0 else { return nil }
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses; cut at the last ')'.
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        guard let paren = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: paren)...].split(separator: " ")
        guard fields.count > 1, pid_t(fields[1]) == parent else { return nil }
        let root = openat(directory, "root", cjail_O_PATH | O_DIRECTORY | O_CLOEXEC)
        return root >= 0 ? root : nil
    }
}

/// A per-session host directory that backs the jail's /tmp, so files there survive a shell
/// restart (after a timeout the whole jail is killed and a new one starts), as they would in
/// a container. It is owned by the jail's host identity (not bound id-mapped: the helper must
/// create the checkout's mount point inside it). Created on first use, removed with the session.
final class PersistentTemporaryDirectory: @unchecked Sendable {
    private var path: String?
    /// `warden-tmp-` for /tmp, `warden-layer-` for an image jail's writable layer.
    private let prefix: String

    init(prefix: String = "warden-tmp-") { self.prefix = prefix }

    /// The directory, created when needed.
    func current(owner: JailIdentity) throws -> String {
        if let path { return path }
        Self.sweepAbandoned
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("\(prefix)\(getpid())-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) } }
        guard let made else {
            throw WardenError("jail.tmp", "cannot create the directory backing the jail's /tmp: \(String(cString: strerror(errno)))")
        }
        if owner.uid != geteuid() || owner.gid != getegid(), chown(made, owner.uid, owner.gid) != 0 {
            let error = WardenError("jail.tmp", "cannot give \(made) to uid \(owner.uid): \(String(cString: strerror(errno)))")
            rmdir(made)
            throw error
        }
        path = made
        return made
    }

    /// The directory with an overlay's `upper/` (owned by the jail's root, so the image's root
    /// directory is the jail root's) and `work/` in it, made when needed.
    func overlayLayer(owner: JailIdentity) throws -> String {
        let path = try current(owner: owner)
        for (name, owned) in [("upper", true), ("work", false)] {
            let directory = path + "/" + name
            if mkdir(directory, 0o755) != 0 {
                guard errno == EEXIST else {
                    throw WardenError("jail.layer", "cannot create \(directory): \(String(cString: strerror(errno)))")
                }
                continue
            }
            if owned, owner.uid != geteuid() || owner.gid != getegid(), chown(directory, owner.uid, owner.gid) != 0 {
                throw WardenError("jail.layer", "cannot give \(directory) to uid \(owner.uid): \(String(cString: strerror(errno)))")
            }
        }
        return path
    }

    /// Removes the directory and everything the jail left in it.
    func remove() {
        guard let path else { return }
        self.path = nil
        do { try HostTree.remove(atPath: path) } catch {
            FileHandle.standardError.write(Data("warden: cannot remove the jail's /tmp at \(path): \(error)\n".utf8))
        }
    }

    deinit { remove() }

    /// Once per process: removes the directories of harnesses that died without closing their
    /// sessions (SIGKILL), recognised by the dead pid in their names.
    private static let sweepAbandoned: Void = {
        let parent = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix("warden-tmp-") || name.hasPrefix("warden-layer-") {
            let fields = name.split(separator: "-")
            guard fields.count == 4, let pid = pid_t(fields[2]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let path = (parent as NSString).appendingPathComponent(name)
            do { try HostTree.remove(atPath: path) } catch {
                FileHandle.standardError.write(Data("warden: cannot remove an abandoned jail /tmp at \(path): \(error)\n".utf8))
            }
        }
    }()
}
