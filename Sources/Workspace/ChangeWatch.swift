import Foundation
import WardenCore

#if canImport(Glibc)
import Glibc
#endif

/// How a tracker finds what changed between snapshots.
public enum ChangeTracking: Sendable {
    /// An inotify watch names the changed paths; only those are compared (full scans where it cannot tell).
    case watched
    /// Every snapshot compares every file with its recorded stat data, as `git status` does.
    case scanned
}

/// How one scan of the working tree went.
public enum TrackerScan: Sendable, Equatable {
    /// Only the paths the watch reported were compared.
    case partial(paths: Int)
    /// Every file was compared, for this reason.
    case full(reason: String)
}

/// Watches a checkout's directories with inotify so a snapshot re-examines only what changed.
///
/// The watch lives in the harness: the inotify descriptor is never passed to the jail, and
/// watches are placed on the host's view of the checkout's inodes (writes through the jail's
/// bind mount reach the same inodes). Directories are opened one component at a time with
/// `O_NOFOLLOW` and watched through `/proc/self/fd`, so a directory swapped for a symlink
/// cannot point a watch at the host.
///
/// What inotify cannot promise is turned into `Drain.everything`, and the tracker scans the
/// whole tree as it did without a watch: a queue overflow, a watch that could not be placed,
/// a directory moved (its watches' paths are stale), or an ignore or attributes file changed
/// (files nobody touched change status). Writes through a second hard link name only the path
/// they went through, so the tracker stops trusting the watch once it sees a file with more
/// than one link. Hard links from outside the checkout cannot be made inside the jail: its
/// checkout is its own mount, and `link` fails across mounts.
final class ChangeWatch {
    /// What a drain found.
    enum Drain: Equatable {
        /// Paths (relative to the checkout, as bytes) that may differ; a directory covers its subtree.
        case paths(Set<[UInt8]>)
        /// The watch may have missed something: scan everything.
        case everything(reason: String)
    }

    /// Why the watch gave up for good (nil while it is usable).
    private(set) var unavailableReason: String?

    private let root: String
    private var descriptor: Int32 = -1
    /// Watch descriptor → the directory it watches, relative to the root ([] is the root).
    private var directories: [Int32: [UInt8]] = [:]
    /// Decides whether a directory that appeared during the episode needs a watch.
    private let wantsWatch: ([UInt8]) -> Bool
    /// The most directories one watch follows, so one huge tree cannot use up the user's
    /// share of inotify watches (`fs.inotify.max_user_watches`) that other episodes need.
    private let limit: Int
    static let defaultLimit = 50_000
    /// The deepest directory the watch follows: one descriptor and one stack frame per level.
    /// (libgit2's own scans stop at 100 levels.)
    static let maximumDepth = 64

    private static let mask: UInt32 = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE
        | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF) | UInt32(IN_ONLYDIR) | UInt32(IN_EXCL_UNLINK)
    /// Names whose change alters the status of files nobody touched.
    private static let ruleFiles: Set<[UInt8]> = [Array(".gitignore".utf8), Array(".gitattributes".utf8)]
    private static let gitName = Array(".git".utf8)

    /// Starts watching every directory below `root` except `.git` directories.
    ///
    /// - Parameter wantsWatch: asked for each directory below the root (its relative path);
    ///   false leaves it and its subtree unwatched, e.g. an ignored directory with nothing
    ///   tracked below it. One created later is still reported once, as the directory itself.
    init(root: String, limit: Int = defaultLimit, wantsWatch: @escaping ([UInt8]) -> Bool) {
        self.root = root
        self.limit = limit
        self.wantsWatch = wantsWatch
        rebuild()
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Drops every watch and watches the whole tree again, as after a missed event.
    ///
    /// Directories are watched before they are listed, so whatever is created while the walk
    /// runs shows up either in the listing or as an event.
    func rebuild() {
        guard unavailableReason == nil else { return }
        if descriptor >= 0 { close(descriptor) }
        directories.removeAll(keepingCapacity: true)
        descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if descriptor < 0 {
            giveUp("inotify is unavailable: \(String(cString: strerror(errno)))")
            return
        }
        let top = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else {
            giveUp("cannot open the checkout to watch it: \(String(cString: strerror(errno)))")
            return
        }
        if let problem = watchTree(top, path: [], depth: 0) { giveUp(problem) }
    }

    /// Reads every pending event without blocking.
    func drain() -> Drain {
        if let unavailableReason { return .everything(reason: unavailableReason) }
        var dirty = Set<[UInt8]>()
        var rescan: String?
        var created: [[UInt8]] = []
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        reading: while true {
            let count = read(descriptor, buffer, bufferSize)
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { break }
                rescan = "cannot read the watch: \(String(cString: strerror(errno)))"
                break
            }
            if count == 0 { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = buffer.advanced(by: offset + MemoryLayout<inotify_event>.size).assumingMemoryBound(to: UInt8.self)
                let name = Array(UnsafeBufferPointer(start: nameStart, count: strnlen(UnsafeRawPointer(nameStart).assumingMemoryBound(to: CChar.self), Int(event.len))))
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    rescan = "the watch's event queue overflowed"
                    break reading
                }
                if event.mask & UInt32(IN_IGNORED) != 0 {
                    directories[event.wd] = nil
                    continue
                }
                guard let directory = directories[event.wd] else { continue }
                if event.mask & UInt32(IN_MOVE_SELF) != 0, directory.isEmpty {
                    rescan = "the checkout itself moved"
                    break reading
                }
                guard !name.isEmpty else { continue }  // events about the directory itself
                let path = directory.isEmpty ? name : directory + [UInt8(ascii: "/")] + name
                let isDirectory = event.mask & UInt32(IN_ISDIR) != 0
                if name == Self.gitName {
                    // A nested repository appeared or went: its directory is scanned again as a whole.
                    dirty.insert(directory)
                    continue
                }
                if Self.ruleFiles.contains(name) {
                    rescan = "\(String(decoding: path, as: UTF8.self)) changed"
                    break reading
                }
                if isDirectory && event.mask & UInt32(IN_MOVED_FROM | IN_MOVED_TO) != 0 {
                    rescan = "directory \(String(decoding: path, as: UTF8.self)) moved"
                    break reading
                }
                if isDirectory && event.mask & UInt32(IN_CREATE) != 0 {
                    created.append(path)
                }
                dirty.insert(path)
            }
        }
        if let rescan {
            rebuild()
            return .everything(reason: unavailableReason ?? rescan)
        }
        for path in created {
            if let problem = watchNewDirectory(path) {
                giveUp(problem)
                return .everything(reason: problem)
            }
        }
        return .paths(dirty)
    }

    /// Stops watching for good; every later drain asks for a full scan.
    func giveUp(_ reason: String) {
        unavailableReason = reason
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        directories.removeAll()
    }

    /// Watches the directory `relative` created since the last drain, and everything below it.
    /// Returns the problem when a watch could not be placed.
    private func watchNewDirectory(_ relative: [UInt8]) -> String? {
        let top = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else { return "cannot open the checkout to watch it: \(String(cString: strerror(errno)))" }
        var current = top
        for component in relative.split(separator: UInt8(ascii: "/")) {
            let next = Self.openDirectory(current, Array(component))
            close(current)
            // Gone again, or no longer a real directory: its parent's events cover it.
            guard next >= 0 else { return nil }
            current = next
        }
        return watchTree(current, path: relative, depth: relative.split(separator: UInt8(ascii: "/")).count)
    }

    /// Opens the directory `name` in `parent`, never through a symlink; -1 when it is not one.
    private static func openDirectory(_ parent: Int32, _ name: [UInt8]) -> Int32 {
        (name + [0]).withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { name in
                guard let name = name.baseAddress else { return -1 }
                return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
        }
    }

    /// Watches the directory open as `directory` (taking ownership), then each subdirectory
    /// that `wantsWatch` accepts.
    private func watchTree(_ directory: Int32, path: [UInt8], depth: Int) -> String? {
        if !path.isEmpty && !wantsWatch(path) {
            close(directory)
            return nil
        }
        if directories.count >= limit {
            close(directory)
            return "the checkout has more than \(limit) directories to watch"
        }
        let watch = inotify_add_watch(descriptor, "/proc/self/fd/\(directory)", Self.mask)
        if watch < 0 {
            let code = errno
            close(directory)
            if code == ENOENT || code == ENOTDIR { return nil }  // gone meanwhile
            let place = path.isEmpty ? "the checkout" : String(decoding: path, as: UTF8.self)
            return code == ENOSPC
                ? "the inotify watch limit (fs.inotify.max_user_watches) was reached at \(place)"
                : "cannot watch \(place): \(String(cString: strerror(code)))"
        }
        directories[watch] = path
        guard let stream = fdopendir(directory) else {
            close(directory)
            return nil
        }
        defer { closedir(stream) }
        let descriptor = dirfd(stream)
        while let entry = readdir(stream) {
            guard entry.pointee.d_type == UInt8(DT_DIR) || entry.pointee.d_type == UInt8(DT_UNKNOWN) else { continue }
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                let bytes = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self)
                return Array(UnsafeBufferPointer(start: bytes, count: strlen(UnsafeRawPointer(bytes).assumingMemoryBound(to: CChar.self))))
            }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] || name == Self.gitName { continue }
            let childPath = path.isEmpty ? name : path + [UInt8(ascii: "/")] + name
            // One descriptor and one stack frame per level: a directory chain deep enough to
            // exhaust either (an agent can make one) is left to full scans.
            guard depth < Self.maximumDepth else {
                return "directories nest deeper than \(Self.maximumDepth) levels at \(String(decoding: childPath, as: UTF8.self))"
            }
            let child = Self.openDirectory(descriptor, name)
            if child < 0 {
                let code = errno
                if code == ENOTDIR || code == ENOENT || code == ELOOP { continue }  // not a directory after all, or gone
                return "cannot open \(String(decoding: childPath, as: UTF8.self)) to watch it: \(String(cString: strerror(code)))"
            }
            if let problem = watchTree(child, path: childPath, depth: depth + 1) { return problem }
        }
        return nil
    }
}
