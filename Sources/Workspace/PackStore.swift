import Foundation
import Glibc
import Logging
import WardenCore

/// The packs built for checkouts, kept on disk across processes (`~/.cache/warden/packs`).
///
/// `PackCache` only helps later checkouts in the same process. Every `warden solve`, and every
/// worker of a run, is a new process, and most check out a commit some process checked out
/// before: building the pack again (walking the history, compressing every object, indexing the
/// result) was the largest part of materializing, 1.4 ms of a 20-file repository's start and
/// seconds for a large one. A stored pack is copied into the checkout, never linked: the agent
/// may write the checkout's `.git`, and must not reach what later episodes copy.
///
/// An entry is a directory named by a hash of its key, holding the key, the pack and its index.
/// It is written under a partial name and renamed into place, so a reader finds it complete or
/// not at all; a pack whose index names another pack's checksum is no entry. Past `byteLimit`
/// bytes the least recently used entries go.
struct PackStore: Sendable {
    static let shared = PackStore(directory: WardenCache.root.appendingPathComponent("packs").path, byteLimit: 2 << 30)

    let directory: String
    let byteLimit: Int
    /// Larger packs are not stored: a few would take the whole store.
    let largestPack: Int

    init(directory: String, byteLimit: Int, largestPack: Int? = nil) {
        (self.directory, self.byteLimit, self.largestPack) = (directory, byteLimit, largestPack ?? byteLimit / 4)
    }

    private static let keyFile = "key"
    private static let logger = Logger(label: "warden.workspace")

    /// The entry directory for `key`.
    func entry(for key: String) -> String {
        directory + "/" + String(fnv1a(key), radix: 16)
    }

    /// Copies the stored pack for `key` into `packDirectory`; false when there is none, or it
    /// cannot be read whole (then nothing is left in `packDirectory`).
    func install(key: String, into packDirectory: String) -> Bool {
        let entry = entry(for: key)
        guard let stored = FileManager.default.contents(atPath: entry + "/" + Self.keyFile),
            String(decoding: stored, as: UTF8.self) == key,
            let name = (try? FileManager.default.contentsOfDirectory(atPath: entry))?.first(where: { $0.hasSuffix(".pack") })
                .map({ String($0.dropLast(".pack".count)) })
        else { return false }
        let pack = open(entry + "/" + name + ".pack", O_RDONLY | O_CLOEXEC)
        let index = open(entry + "/" + name + ".idx", O_RDONLY | O_CLOEXEC)
        defer {
            if pack >= 0 { close(pack) }
            if index >= 0 { close(index) }
        }
        guard pack >= 0, index >= 0, Self.indexDescribes(index: index, pack: pack) else { return false }
        let targets = [packDirectory + "/" + name + ".pack", packDirectory + "/" + name + ".idx"]
        do {
            try PackCache.copy(pack, to: targets[0])
            try PackCache.copy(index, to: targets[1])
        } catch {
            Self.logger.warning("a stored pack could not be copied; building it", metadata: ["entry": "\(entry)", "cause": "\(error)"])
            for target in targets { unlink(target) }
            return false
        }
        // The entry's time is its last use, for eviction.
        _ = utimes(entry, nil)
        return true
    }

    /// Stores the one pack in `packDirectory` for `key`, unless an entry is there already or it
    /// is too large. Only a cache: a failure is logged and the next process builds the pack.
    func save(key: String, from packDirectory: String) {
        let entry = entry(for: key)
        guard access(entry, F_OK) != 0 else { return }
        let partial = directory + "/.partial-" + String(fnv1a(key), radix: 16) + "-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            let names = try FileManager.default.contentsOfDirectory(atPath: packDirectory).filter { $0.hasSuffix(".pack") }
            guard names.count == 1, let name = names.first.map({ String($0.dropLast(".pack".count)) }) else {
                throw WardenError("workspace.pack-store", "expected one pack, found \(names.count)", context: packDirectory)
            }
            let sources = [packDirectory + "/" + name + ".pack", packDirectory + "/" + name + ".idx"]
            guard try sources.reduce(0, { $0 + (try PackCache.size(of: $1)) }) <= largestPack else { return }
            try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
            for source in sources {
                let descriptor = open(source, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { throw WardenError("workspace.pack-store", "cannot open: \(String(cString: strerror(errno)))", context: source) }
                defer { close(descriptor) }
                try PackCache.copy(descriptor, to: partial + "/" + (source as NSString).lastPathComponent)
            }
            try Data(key.utf8).write(to: URL(fileURLWithPath: partial + "/" + Self.keyFile))
            // Another process may have stored the same pack meanwhile: then its entry stays.
            if rename(partial, entry) != 0 {
                guard errno == EEXIST || errno == ENOTEMPTY else {
                    throw WardenError("workspace.pack-store", "cannot publish the entry: \(String(cString: strerror(errno)))", context: entry)
                }
                try FileManager.default.removeItem(atPath: partial)
            }
            try evict()
        } catch {
            Self.logger.warning("a built pack could not be stored for later processes", metadata: ["entry": "\(entry)", "cause": "\(error)"])
            if access(partial, F_OK) == 0 {
                do { try FileManager.default.removeItem(atPath: partial) } catch {
                    Self.logger.warning("a partial pack entry could not be removed", metadata: ["entry": "\(partial)", "cause": "\(error)"])
                }
            }
        }
    }

    /// Removes the least recently used entries past the limit, and partial entries a process
    /// that died left an hour or more ago. Only a store pays for the listing.
    private func evict() throws {
        var entries: [(path: String, used: Double, bytes: Int)] = []
        let now = Date().timeIntervalSince1970
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let path = directory + "/" + name
            var info = stat()
            guard stat(path, &info) == 0 else { continue }  // evicted by another process meanwhile
            let used = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
            if name.hasPrefix(".partial-") {
                if now - used > 3_600 { try Self.remove(path) }
                continue
            }
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            entries.append((path, used, files.reduce(0) { $0 + ((try? PackCache.size(of: path + "/" + $1)) ?? 0) }))
        }
        var total = entries.reduce(0) { $0 + $1.bytes }
        for entry in entries.sorted(by: { $0.used < $1.used }) where total > byteLimit {
            try Self.remove(entry.path)
            total -= entry.bytes
        }
    }

    private static func remove(_ path: String) throws {
        do { try FileManager.default.removeItem(atPath: path) } catch let error as CocoaError where error.code == .fileNoSuchFile {
            return  // another process removed it first
        }
    }

    /// Whether the index's record of its pack's checksum (the 20 bytes before its own) is the
    /// pack's trailing checksum: a pack and an index from two different builds do not match.
    static func indexDescribes(index: Int32, pack: Int32) -> Bool {
        var indexInfo = stat(), packInfo = stat()
        guard fstat(index, &indexInfo) == 0, fstat(pack, &packInfo) == 0, indexInfo.st_size >= 48, packInfo.st_size >= 32 else { return false }
        var recorded = [UInt8](repeating: 0, count: 20), actual = [UInt8](repeating: 1, count: 20)
        guard pread(index, &recorded, 20, indexInfo.st_size - 40) == 20, pread(pack, &actual, 20, packInfo.st_size - 20) == 20 else { return false }
        return recorded == actual
    }
}
