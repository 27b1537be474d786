import CGit2
import Foundation
import WardenCore

#if canImport(Glibc)
import Glibc
#endif

/// What makes a tracker start fast: base objects read in place or copied without delta search,
/// and a stat cache taken from the checkout's own index.
extension WorkspaceTracker {
    /// The `objects` directory of a repository (normal or bare) or of an `objects` directory itself.
    static func objectsDirectory(of source: URL) throws -> URL {
        let source = source.standardizedFileURL.resolvingSymlinksInPath()
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: source.appendingPathComponent(".git").path) {
            return try CheckoutRepository(checkout: source).objectsDirectory.standardizedFileURL.resolvingSymlinksInPath()
        }
        let objects = source.appendingPathComponent("objects")
        if fm.fileExists(atPath: objects.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return objects
        }
        if fm.fileExists(atPath: source.appendingPathComponent("pack").path, isDirectory: &isDirectory), isDirectory.boolValue {
            return source
        }
        throw WardenError("workspace.open", "the object source is neither a repository nor an objects directory", context: source.path)
    }

    /// True when the object database in `objectsDirectory` (alone) has `id`.
    static func contains(_ id: git_oid, objectsDirectory: URL) -> Bool {
        var odb: OpaquePointer?
        guard git_odb_open(&odb, objectsDirectory.path) == 0 else { return false }
        defer { git_odb_free(odb) }
        var probe = id
        return git_odb_exists(odb, &probe) != 0
    }

    /// Adds `alternate` to the shadow repository's `objects/info/alternates` unless it is listed.
    ///
    /// Written before the shadow object database is first opened, so libgit2 loads it like any
    /// alternate, now and whenever this state is opened again.
    static func recordAlternate(_ alternate: URL, shadowObjects: String) throws {
        let info = URL(fileURLWithPath: shadowObjects).appendingPathComponent("info")
        let file = info.appendingPathComponent("alternates")
        // A missing file is empty; an unreadable one must not be replaced by our line alone.
        var existing = ""
        if FileManager.default.fileExists(atPath: file.path) {
            do { existing = try String(contentsOf: file, encoding: .utf8) } catch {
                throw WardenError("workspace.state", "cannot read the alternates of the shadow repository: \(error)", context: file.path)
            }
        }
        if existing.split(separator: "\n").contains(where: { $0 == alternate.path }) { return }
        do {
            try FileManager.default.createDirectory(at: info, withIntermediateDirectories: true)
            let text = existing.isEmpty || existing.hasSuffix("\n") ? existing : existing + "\n"
            try Data((text + alternate.path + "\n").utf8).write(to: file, options: .atomic)
        } catch {
            throw WardenError("workspace.state", "cannot record the object source as an alternate: \(error)", context: file.path)
        }
    }

    /// Copies `tree` and everything below it from `source` into the shadow repository as one pack.
    ///
    /// Delta search is switched off: on a 5,000-file tree it took over a second, and the pack is
    /// written once per episode and rarely read in full.
    static func copyObjects(of tree: git_oid, from source: OpaquePointer?, into shadowOdb: OpaquePointer?, shadowPath: String) throws {
        // libgit2 reads its packing limits from the repository's config only. Objects above
        // `bigFileThreshold` are never deltified; libgit2 1.5 takes that threshold from
        // `pack.deltaCacheSize` (a bug), so both are set.
        let configPath = shadowPath + "/warden-copy.config"
        if !FileManager.default.fileExists(atPath: configPath) {
            do {
                try Data("[pack]\n\tbigFileThreshold = 1\n\tdeltaCacheSize = 1\n".utf8).write(to: URL(fileURLWithPath: configPath), options: .atomic)
            } catch {
                throw WardenError("workspace.state", "cannot write the packing configuration: \(error)", context: configPath)
            }
        }
        var config: OpaquePointer?
        try check(git_config_open_ondisk(&config, configPath), "workspace.state", "cannot read the packing configuration", context: configPath)
        defer { git_config_free(config) }
        try check(git_repository_set_config(source, config), "workspace.state", "cannot configure packing", context: configPath)

        var treeID = tree
        var builder: OpaquePointer?
        try check(git_packbuilder_new(&builder, source), "workspace.state", "cannot start copying the base tree")
        defer { git_packbuilder_free(builder) }
        try check(git_packbuilder_insert_tree(builder, &treeID), "workspace.state", "cannot collect the objects of base tree \(tree.hex)", context: shadowPath)
        let packDirectory = shadowPath + "/objects/pack"
        try check(git_packbuilder_write(builder, packDirectory, 0, nil, nil), "workspace.state", "cannot write the base tree's objects", context: packDirectory)
        try check(git_odb_refresh(shadowOdb), "workspace.state", "cannot reload the shadow object database", context: shadowPath)
    }

    /// True when every blob the index names is in the object database in `objectsDirectory`
    /// (submodule links name other repositories' commits).
    ///
    /// Asked of that database alone: its packs answer from their indexes, where the shadow
    /// repository would first look for (and miss) a loose file per object.
    static func hasAllBlobs(of index: OpaquePointer, objectsDirectory: URL) -> Bool {
        var odb: OpaquePointer?
        guard git_odb_open(&odb, objectsDirectory.path) == 0 else { return false }
        defer { git_odb_free(odb) }
        let gitlink = UInt32(GIT_FILEMODE_COMMIT.rawValue)
        for i in 0..<git_index_entrycount(index) {
            guard let entry = git_index_get_byindex(index, i), entry.pointee.mode != gitlink else { continue }
            var id = entry.pointee.id
            if git_odb_exists_ext(odb, &id, GIT_ODB_LOOKUP_NO_REFRESH.rawValue) == 0 { return false }
        }
        return true
    }

    /// Lays out an empty bare shadow repository unless one exists.
    ///
    /// Written directly: `git_repository_init_ext` rewrote the config once per setting and
    /// took about 7 ms; libgit2 needs no more than this to open a bare repository.
    static func createShadowLayout(at shadowPath: String) throws {
        let fm = FileManager.default
        let root = URL(fileURLWithPath: shadowPath)
        if fm.fileExists(atPath: root.appendingPathComponent("HEAD").path) { return }
        do {
            for directory in ["objects/pack", "objects/info", "refs/heads", "refs/tags"] {
                try fm.createDirectory(at: root.appendingPathComponent(directory), withIntermediateDirectories: true)
            }
            try Data("[core]\n\trepositoryformatversion = 0\n\tbare = true\n".utf8).write(to: root.appendingPathComponent("config"))
            // HEAD last: its presence marks a complete layout.
            try Data("ref: refs/heads/warden-shadow\n".utf8).write(to: root.appendingPathComponent("HEAD"))
        } catch {
            throw WardenError("workspace.state", "cannot create the shadow repository: \(error)", context: shadowPath)
        }
    }

    /// Copies stat data from the checkout's own index into `shadowIndex` (freshly read from the
    /// base tree), so the first scan hashes only files that may differ from the base.
    ///
    /// An entry is taken only when its path, blob id and mode equal the base tree's (a stale or
    /// edited index cannot make a changed file look like the base), it is an ordinary stage-0
    /// entry (not intent-to-add or skip-worktree), and it is not racily clean: git's rule, its
    /// mtime is older than the index file's, else the file may have changed within the same
    /// timestamp after git looked at it. Anything unreadable leaves the shadow index as it was.
    ///
    /// - Returns: How many entries got stat data.
    @discardableResult
    static func seedStatCache(_ shadowIndex: OpaquePointer, from indexFile: URL) -> Int {
        var fileInfo = stat()
        guard lstat(indexFile.path, &fileInfo) == 0, fileInfo.st_mode & S_IFMT == S_IFREG else { return 0 }
        let indexSeconds = Int64(fileInfo.st_mtim.tv_sec)
        let indexNanoseconds = Int64(fileInfo.st_mtim.tv_nsec)
        var userIndex: OpaquePointer?
        guard git_index_open(&userIndex, indexFile.path) == 0, let userIndex else {
            git_error_clear()
            return 0
        }
        defer { git_index_free(userIndex) }

        let excluded = UInt16(GIT_INDEX_ENTRY_INTENT_TO_ADD.rawValue | GIT_INDEX_ENTRY_SKIP_WORKTREE.rawValue)
        let stageMask = UInt16(GIT_INDEX_ENTRY_STAGEMASK)
        let shadowCount = git_index_entrycount(shadowIndex)
        let userCount = git_index_entrycount(userIndex)
        var i = 0
        var j = 0
        var seeded = 0
        // Both indexes are sorted by path bytes, then stage: walk them side by side.
        while i < shadowCount && j < userCount {
            guard let ours = git_index_get_byindex(shadowIndex, i), let theirs = git_index_get_byindex(userIndex, j),
                  let ourPath = ours.pointee.path, let theirPath = theirs.pointee.path
            else { break }
            let order = strcmp(ourPath, theirPath)
            if order < 0 { i += 1; continue }
            if order > 0 { j += 1; continue }
            let entry = theirs.pointee
            if entry.flags & stageMask != 0 { j += 1; continue }  // conflict stages sort after stage 0
            i += 1
            j += 1
            let mtime = (Int64(entry.mtime.seconds), Int64(entry.mtime.nanoseconds))
            guard entry.mode == ours.pointee.mode,
                  entry.flags_extended & excluded == 0,
                  entry.id.isEqual(to: ours.pointee.id),
                  mtime.0 < indexSeconds || (mtime.0 == indexSeconds && mtime.1 < indexNanoseconds),
                  entry.mtime.seconds != 0
            else { continue }
            // libgit2 hands out its own entries; changing stat fields in place keeps the tree
            // cache from `git_index_read_tree` valid, which `git_index_add` would invalidate.
            let target = UnsafeMutablePointer(mutating: ours)
            target.pointee.ctime = entry.ctime
            target.pointee.mtime = entry.mtime
            target.pointee.dev = entry.dev
            target.pointee.ino = entry.ino
            target.pointee.uid = entry.uid
            target.pointee.gid = entry.gid
            target.pointee.file_size = entry.file_size
            seeded += 1
        }
        return seeded
    }
}
