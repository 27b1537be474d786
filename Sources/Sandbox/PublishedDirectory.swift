import Foundation
import WardenCore

/// An exclusive `flock` on a lock file, polled so a waiting task stays cancellable and holds no
/// thread. The kernel drops it when the holder dies, so a crash never leaves it taken. Two
/// holders in one process conflict too (each acquisition opens the file afresh).
public final class FileLock {
    private var descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    public static func acquire(_ path: String) async throws -> FileLock {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw WardenError("cache.lock", "cannot open the lock: \(String(cString: strerror(errno)))", context: path) }
        let lock = FileLock(descriptor: descriptor)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw WardenError("cache.lock", "cannot lock: \(String(cString: strerror(errno)))", context: path)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return lock
    }

    public func release() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    deinit { release() }
}

/// A cache entry that is a directory built once and then only read: the image store's unpacked
/// images, the environment store's environments.
///
/// The entry is built into `.partial-<name>-<pid>` beside it and renamed into place only when
/// complete, so a published entry is complete by construction and a crash leaves only a partial
/// directory, which the next build removes. Builders of one entry, in any thread or process,
/// take `lock` first: one builds, the others wait and then find it published.
public enum PublishedDirectory {
    /// Builds `final` with `build` (given the empty partial directory) unless it is published;
    /// returns whether this call built it. A build that throws leaves nothing behind.
    @discardableResult
    public static func ensure(_ final: URL, lock: URL, build: (URL) async throws -> Void) async throws -> Bool {
        if isPublished(final) { return false }
        let held = try await FileLock.acquire(lock.path)
        defer { held.release() }
        if isPublished(final) { return false }  // another builder finished while we waited

        let parent = final.deletingLastPathComponent(), name = final.lastPathComponent
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        // Left by a builder that died: no one else writes there while we hold the lock.
        for entry in try FileManager.default.contentsOfDirectory(atPath: parent.path) where entry.hasPrefix(".partial-\(name)-") {
            try HostTree.remove(atPath: parent.appendingPathComponent(entry).path)
        }
        let partial = parent.appendingPathComponent(".partial-\(name)-\(getpid())")
        do {
            try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
            try await build(partial)
            guard rename(partial.path, final.path) == 0 else {
                throw WardenError("cache.publish", "cannot publish the cache entry: \(String(cString: strerror(errno)))", context: final.path)
            }
        } catch {
            do { try HostTree.remove(atPath: partial.path) } catch let cleanup {
                throw WardenError("cache.publish", "\(error); then the partial entry could not be removed: \(cleanup)", context: partial.path)
            }
            throw error
        }
        return true
    }

    /// Whether `final` is a published entry.
    public static func isPublished(_ final: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: final.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
