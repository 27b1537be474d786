import Foundation
import Glibc
import Logging
import WardenCore

/// The packs this process has built for checkouts, by source repository and commit.
///
/// The objects reachable from a commit never change, so the next checkout of the same commit
/// (the next attempt at a task, its scoring, an environment server's reset) copies two files
/// instead of walking the history and compressing every object again: half of what
/// materializing a small repository cost. A pack is kept from the second time its commit is
/// checked out, or the first when other checkouts are waiting for it: most commits of a
/// one-shot `warden solve` or of a batch run are checked out once or twice, and keeping costs a copy (7 ms on this machine's ext4 `/tmp` for a small
/// repository, far more for a large one). The copies live in unnamed temporary files, which
/// vanish with the process however it ends; at most `byteLimit` bytes are kept, the least
/// recently used going first.
final class PackCache: @unchecked Sendable {
    static let shared = PackCache(directory: FileManager.default.temporaryDirectory.path, byteLimit: 256 << 20, countLimit: 64, store: .shared)

    /// One kept pack: its file name without extension and the open copies of its two files.
    final class Pack: Sendable {
        let name: String
        let pack: Int32
        let index: Int32
        let bytes: Int

        init(name: String, pack: Int32, index: Int32, bytes: Int) {
            (self.name, self.pack, self.index, self.bytes) = (name, pack, index, bytes)
        }

        deinit {
            close(pack)
            close(index)
        }
    }

    /// `O_TMPFILE`, a macro Swift does not import: `__O_TMPFILE | O_DIRECTORY` (the same
    /// `__O_TMPFILE` on x86-64 and arm64).
    private static let unnamedFile: Int32 = 0o20000000 | O_DIRECTORY

    private let directory: String
    private let byteLimit: Int
    /// Each kept pack holds two descriptors: many small repositories must not use up the
    /// process's descriptor limit.
    private let countLimit: Int
    /// Packs kept across processes, looked up before building and given what is built.
    private let store: PackStore?
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var packs: [String: Pack] = [:]
    private var recency: [String] = []
    private var building: Set<String> = []
    /// Keys built once and not kept (bounded: cleared when it grows past 4,096).
    private var builtOnce: Set<String> = []
    /// Keys whose build others are waiting for: proof enough that the pack will be reused.
    private var awaited: Set<String> = []
    private var keptBytes = 0
    private var buildCount = 0

    init(directory: String, byteLimit: Int, countLimit: Int = 64, store: PackStore? = nil) {
        self.directory = directory
        self.byteLimit = byteLimit
        self.countLimit = countLimit
        self.store = store
    }

    /// Puts the pack for `key` into `packDirectory`: a copy of the kept one when there is one,
    /// else of the stored one, else whatever `build` writes there, which is then kept and
    /// stored. Callers with the same key wait for one build rather than each making their own.
    func install(key: String, into packDirectory: String, build: () throws -> Void) throws {
        condition.lock()
        while building.contains(key) {
            awaited.insert(key)
            condition.wait()
        }
        if let pack = packs[key] {
            recency.removeAll { $0 == key }
            recency.append(key)
            condition.unlock()
            // The pack's descriptors stay open while they are copied, even if it is evicted meanwhile.
            try withExtendedLifetime(pack) {
                try Self.copy(pack.pack, to: packDirectory + "/" + pack.name + ".pack")
                try Self.copy(pack.index, to: packDirectory + "/" + pack.name + ".idx")
            }
            return
        }
        building.insert(key)
        let builtBefore = builtOnce.remove(key) != nil
        if !builtBefore {
            if builtOnce.count >= 4_096 { builtOnce.removeAll() }
            builtOnce.insert(key)
        }
        condition.unlock()
        defer {
            condition.lock()
            building.remove(key)
            awaited.remove(key)
            condition.broadcast()
            condition.unlock()
        }
        if let store, store.install(key: key, into: packDirectory) { return }
        condition.lock()
        buildCount += 1
        condition.unlock()
        try build()
        store?.save(key: key, from: packDirectory)
        condition.lock()
        let reused = builtBefore || awaited.contains(key)
        condition.unlock()
        guard reused else { return }
        do {
            guard let pack = try keep(from: packDirectory) else { return }
            condition.lock()
            defer { condition.unlock() }
            while keptBytes + pack.bytes > byteLimit || packs.count >= countLimit, let oldest = recency.first {
                recency.removeFirst()
                keptBytes -= packs.removeValue(forKey: oldest)?.bytes ?? 0
            }
            packs[key] = pack
            recency.append(key)
            keptBytes += pack.bytes
        } catch {
            // Only a cache: the next checkout of this commit builds its pack again.
            Logger(label: "warden.workspace").warning("a built pack could not be kept for reuse", metadata: ["pack": "\(packDirectory)", "cause": "\(error)"])
        }
    }

    /// How many packs were built, the keys of those kept (least recently used first) and
    /// their bytes (for tests).
    var state: (builds: Int, kept: [String], bytes: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (buildCount, recency, keptBytes)
    }

    /// Opens unnamed copies of the one pack `build` wrote; nil when it is over the limit.
    private func keep(from packDirectory: String) throws -> Pack? {
        let names = try FileManager.default.contentsOfDirectory(atPath: packDirectory).filter { $0.hasSuffix(".pack") }
        guard names.count == 1, let name = names.first.map({ String($0.dropLast(".pack".count)) }) else {
            throw WardenError("workspace.pack-cache", "expected one pack, found \(names.count)", context: packDirectory)
        }
        let packBytes = try Self.size(of: packDirectory + "/" + name + ".pack")
        let indexBytes = try Self.size(of: packDirectory + "/" + name + ".idx")
        guard packBytes + indexBytes <= byteLimit else { return nil }
        let pack = try copyToUnnamedFile(packDirectory + "/" + name + ".pack", bytes: packBytes)
        let index: Int32
        do { index = try copyToUnnamedFile(packDirectory + "/" + name + ".idx", bytes: indexBytes) } catch {
            close(pack)
            throw error
        }
        return Pack(name: name, pack: pack, index: index, bytes: packBytes + indexBytes)
    }

    private func copyToUnnamedFile(_ path: String, bytes: Int) throws -> Int32 {
        let copy = open(directory, Self.unnamedFile | O_RDWR | O_CLOEXEC, 0o600)
        guard copy >= 0 else { throw WardenError("workspace.pack-cache", "cannot create an unnamed file: \(String(cString: strerror(errno)))", context: directory) }
        let source = open(path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else {
            close(copy)
            throw WardenError("workspace.pack-cache", "cannot open: \(String(cString: strerror(errno)))", context: path)
        }
        defer { close(source) }
        do { try Self.transfer(from: source, to: copy, bytes: bytes, context: path) } catch {
            close(copy)
            throw error
        }
        return copy
    }

    /// Writes a new read-only file at `path` holding all of `source` (read at explicit offsets,
    /// so copies into several checkouts may run at once).
    static func copy(_ source: Int32, to path: String) throws {
        var info = stat()
        guard fstat(source, &info) == 0 else { throw WardenError("workspace.pack-cache", "cannot read a kept pack: \(String(cString: strerror(errno)))", context: path) }
        let destination = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard destination >= 0 else { throw WardenError("workspace.materialize", "cannot create: \(String(cString: strerror(errno)))", context: path) }
        defer { close(destination) }
        try transfer(from: source, to: destination, bytes: Int(info.st_size), context: path)
    }

    /// Copies `bytes` bytes from offset 0 of `source` in the kernel.
    private static func transfer(from source: Int32, to destination: Int32, bytes: Int, context: String) throws {
        var offset = off_t(0)
        while offset < bytes {
            let sent = sendfile(destination, source, &offset, bytes - Int(offset))
            if sent > 0 { continue }
            if sent < 0 && errno == EINTR { continue }
            let reason = sent == 0 ? "the file ended early" : String(cString: strerror(errno))
            throw WardenError("workspace.materialize", "cannot copy a pack: \(reason)", context: context)
        }
    }

    static func size(of path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { throw WardenError("workspace.pack-cache", "cannot stat: \(String(cString: strerror(errno)))", context: path) }
        return Int(info.st_size)
    }
}
