import CGit2
import Foundation
import Logging
import WardenCore

/// Tracks the working tree of a checkout the agent works in, independently of the checkout's own git data.
///
/// The tracker keeps a bare shadow repository in a state directory outside the checkout: its
/// own object database (holding the base tree, or reading it from an `objectSource` outside
/// the checkout, so diffs survive `rm -rf .git`), its own file-backed index (whose stat cache
/// makes snapshots incremental) and the checkout as its work tree. Nothing the agent can write inside the checkout (`.git/config`, `.git/index`,
/// `info/exclude`, hooks, refs) is read after initialisation, and the user's `.git/index`
/// and `HEAD` are never written.
///
/// Not `Sendable`: libgit2 handles are not thread-safe; use a tracker from one task.
public final class WorkspaceTracker {
    /// The checkout whose working tree is tracked.
    public let checkout: URL
    /// The harness-owned directory holding the shadow repository and index.
    public let stateDirectory: URL
    /// The commit the episode started from.
    public let baseCommitID: String
    /// The tree of `baseCommitID`; every `sinceBase` and `diff()` is relative to it.
    public let baseTreeID: String
    /// The tree of the working tree as of the last snapshot (or initialisation).
    public private(set) var currentTreeID: String

    private let repo: OpaquePointer
    private let index: OpaquePointer
    /// Reads recorded content from a descriptor of the checkout, never through a symlink.
    private let reader: CheckoutReader
    private let baseTree: git_oid
    private var previousTree: git_oid
    /// In-memory object store for new blobs and trees (nil: libgit2 writes loose objects).
    private let objectCache: OpaquePointer?
    /// Snapshot trees whose new objects are still only in `objectCache`.
    private var unsavedTrees: [git_oid] = []
    private var unsavedBytes: UInt64 = 0
    /// Above this many bytes of new file content, snapshot objects are written to disk at once.
    private static let objectCacheLimit: UInt64 = 32 << 20
    /// How often a scan is tried while files vanish under it.
    private static let scanAttempts = 20
    /// How many shadow index entries took their stat data from the checkout's index at start (for tests).
    private(set) var seededStatEntries = 0
    /// Reports which paths changed between snapshots (nil: every snapshot scans the whole tree).
    private var watch: ChangeWatch?
    /// Set when a scan recorded a regular file with more than one hard link.
    private var sawMultiplyLinkedFile = false
    /// Above this many dirty paths a snapshot scans everything: the path list stops paying off.
    private static let dirtyPathLimit = 2_000
    /// How the last scan of the working tree went.
    public private(set) var lastScan: TrackerScan = .full(reason: "start")

    /// Opens tracking of `checkout`, keeping the tracker's own data in `stateDirectory`.
    ///
    /// Create the tracker before the agent runs: the checkout's object database (and, when it
    /// can speed up the first scan, its `.git/index`) are read here and never again.
    ///
    /// - Parameters:
    ///   - checkout: The work tree the agent changes. It must contain a `.git` (directory or gitfile)
    ///     unless `baseCommit` and `objectSource` are both given.
    ///   - stateDirectory: A directory outside the checkout; created if missing.
    ///   - baseCommit: The base commit id (full or unique prefix); defaults to the checkout's `HEAD`.
    ///   - objectSource: A repository (normal or bare) or `objects` directory outside the checkout
    ///     that holds the base commit's objects, e.g. the `source` given to `materialize`. The shadow
    ///     repository reads base objects from it (a git alternate) instead of copying them, so it
    ///     must outlive the state directory and must not be writable by the agent. When it lacks
    ///     any base object the objects are copied from the checkout as without it.
    ///   - tracking: `.watched` (the default) re-examines only the paths an inotify watch reports
    ///     changed; `.scanned` compares every file at every snapshot.
    public convenience init(checkout: URL, stateDirectory: URL, baseCommit: String? = nil, objectSource: URL? = nil, tracking: ChangeTracking = .watched) throws {
        try self.init(checkout: checkout, stateDirectory: stateDirectory, baseCommit: baseCommit, objectSource: objectSource, tracking: tracking, watchLimit: ChangeWatch.defaultLimit)
    }

    /// As the public initialiser, with the most directories the watch may follow.
    init(checkout: URL, stateDirectory: URL, baseCommit: String?, objectSource: URL?, tracking: ChangeTracking, watchLimit: Int) throws {
        try ensureLibgit2()
        let checkout = checkout.standardizedFileURL.resolvingSymlinksInPath()
        let stateDirectory = stateDirectory.standardizedFileURL
        let checkoutPath = checkout.path.hasSuffix("/") ? checkout.path : checkout.path + "/"
        let resolvedState = stateDirectory.resolvingSymlinksInPath().path + "/"
        if resolvedState.hasPrefix(checkoutPath) || stateDirectory.path.hasPrefix(checkoutPath) {
            throw WardenError("workspace.state", "the state directory must live outside the checkout, where the agent cannot write", context: stateDirectory.path)
        }
        let alternate = try objectSource.map { try Self.objectsDirectory(of: $0) }
        if let alternate, (alternate.path + "/").hasPrefix(checkoutPath) {
            throw WardenError("workspace.state", "the object source must live outside the checkout, where the agent cannot write", context: alternate.path)
        }
        do {
            try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw WardenError("workspace.state", "cannot create the state directory: \(error)", context: stateDirectory.path)
        }
        self.checkout = checkout
        self.stateDirectory = stateDirectory
        self.reader = try CheckoutReader(checkout.path)

        // 1. Find the base commit and tree through object databases only (no config is read).
        let source: CheckoutRepository?
        do {
            source = try CheckoutRepository(checkout: checkout)
        } catch where alternate != nil && baseCommit != nil {
            source = nil  // e.g. `.git` already removed: the object source has everything
        }
        var sourceOdb: OpaquePointer?
        if let source {
            try check(git_odb_open(&sourceOdb, source.objectsDirectory.path), "workspace.open", "cannot open the object database", context: source.objectsDirectory.path)
        } else {
            try check(git_odb_new(&sourceOdb), "workspace.open", "cannot create an object database", context: checkout.path)
        }
        defer { git_odb_free(sourceOdb) }
        if let alternate {
            try check(git_odb_add_disk_alternate(sourceOdb, alternate.path), "workspace.open", "cannot open the object source", context: alternate.path)
        }
        var sourceRepo: OpaquePointer?
        try check(git_repository_wrap_odb(&sourceRepo, sourceOdb), "workspace.open", "cannot wrap the object database", context: checkout.path)
        defer { git_repository_free(sourceRepo) }

        let requested: String
        if let baseCommit {
            requested = baseCommit
        } else if let source {
            requested = try source.resolveHEAD()
        } else {
            throw WardenError("workspace.open", "no .git found; pass the base commit", context: checkout.path)
        }
        var commitID = try Self.lookupID(requested, odb: sourceOdb, context: checkout.path)
        var object: OpaquePointer?
        try check(git_object_lookup(&object, sourceRepo, &commitID, GIT_OBJECT_ANY), "workspace.open", "base commit \(requested) is not in the checkout's object database\(alternate == nil ? "" : " nor in the object source")", context: checkout.path)
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        try check(git_object_peel(&commit, object, GIT_OBJECT_COMMIT), "workspace.open", "\(requested) is not a commit", context: checkout.path)
        defer { git_object_free(commit) }
        guard let commitOid = git_object_id(commit)?.pointee, let treeOid = git_commit_tree_id(commit)?.pointee else {
            throw WardenError("workspace.open", "cannot read the tree of \(requested)", context: checkout.path)
        }
        baseCommitID = commitOid.hex
        baseTreeID = treeOid.hex
        baseTree = treeOid

        // 2. The shadow repository: bare, ours, with the checkout as work tree.
        let shadowPath = stateDirectory.appendingPathComponent("shadow.git").path
        try Self.createShadowLayout(at: shadowPath)
        var shadow: OpaquePointer?
        try check(git_repository_open_bare(&shadow, shadowPath), "workspace.state", "cannot open the shadow repository", context: shadowPath)
        guard let shadow else {
            throw WardenError("workspace.state", "libgit2 returned no shadow repository", context: shadowPath)
        }
        var ownsShadow = true
        defer { if ownsShadow { git_repository_free(shadow) } }
        try check(git_repository_set_workdir(shadow, checkout.path, 0), "workspace.state", "cannot attach the checkout as work tree", context: checkout.path)

        // 3. Base objects, so diffs never depend on the checkout's .git: read in place from the
        //    object source (an alternate, recorded in the shadow repository for later opens),
        //    or copied.
        var treeProbe = treeOid
        var readsAlternate = false
        if let alternate, Self.contains(treeOid, objectsDirectory: alternate) {
            try Self.recordAlternate(alternate, shadowObjects: shadowPath + "/objects")
            readsAlternate = true
        }
        var shadowOdb: OpaquePointer?
        try check(git_repository_odb(&shadowOdb, shadow), "workspace.state", "cannot open the shadow object database", context: shadowPath)
        defer { git_odb_free(shadowOdb) }
        var copied = false
        if git_odb_exists(shadowOdb, &treeProbe) == 0 {
            try Self.copyObjects(of: treeOid, from: sourceRepo, into: shadowOdb, shadowPath: shadowPath)
            copied = true
        }

        // New blobs and trees go to memory first: one loose file (create, link, unlink, utime)
        // per object cost about 0.5 ms each on the VMs we measured; `persist()` packs them.
        var cache: OpaquePointer?
        if git_mempack_new(&cache) == 0, let created = cache {
            if git_odb_add_backend(shadowOdb, created, 1000) < 0 {
                cache = nil
            }
        }

        // 4. The shadow index, starting at the base tree. Its stat data comes from the shadow
        //    index of an earlier session, else from the checkout's own index where that agrees
        //    with the base tree; the first scan hashes whatever is left.
        let indexPath = stateDirectory.appendingPathComponent("index").path
        var shadowIndex: OpaquePointer?
        try check(git_index_open(&shadowIndex, indexPath), "workspace.state", "cannot open the shadow index", context: indexPath)
        guard let shadowIndex else {
            throw WardenError("workspace.state", "libgit2 returned no index", context: indexPath)
        }
        var ownsIndex = true
        defer { if ownsIndex { git_index_free(shadowIndex) } }
        try check(git_repository_set_index(shadow, shadowIndex), "workspace.state", "cannot attach the shadow index", context: indexPath)
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, shadow, &treeProbe), "workspace.state", "base tree \(baseTreeID) missing after copy", context: shadowPath)
        defer { git_tree_free(tree) }
        let reusedIndex = git_index_entrycount(shadowIndex) > 0
        try check(git_index_read_tree(shadowIndex, tree), "workspace.state", "cannot load the base tree into the shadow index", context: indexPath)
        if readsAlternate && !copied, let alternate, !Self.hasAllBlobs(of: shadowIndex, objectsDirectory: alternate) {
            // The object source holds the trees but not every blob, as a partial clone would.
            try Self.copyObjects(of: treeOid, from: sourceRepo, into: shadowOdb, shadowPath: shadowPath)
        }
        var seeded = 0
        if !reusedIndex, let source {
            seeded = Self.seedStatCache(shadowIndex, from: source.gitDirectory.appendingPathComponent("index"))
        }

        repo = shadow
        index = shadowIndex
        objectCache = cache
        previousTree = treeOid
        currentTreeID = baseTreeID
        ownsShadow = false
        ownsIndex = false
        seededStatEntries = seeded

        // 5. The watch starts before the first scan, so nothing changed after that scan is missed.
        if tracking == .watched {
            watch = ChangeWatch(root: checkout.path, limit: watchLimit) { [unowned self] directory in self.needsWatch(directory) }
        }

        // 6. The state at start is the first "previous" snapshot.
        let start = try scanWorkingTree()
        if sawMultiplyLinkedFile { watch?.giveUp(Self.multiplyLinked) }
        try saveIndex()
        previousTree = start
        currentTreeID = start.hex
    }

    deinit {
        // Best effort: keep objects and the stat cache on disk for whoever reads this state; a
        // failure costs the next reader a rescan, not a wrong answer.
        do { try persist() } catch {
            Logger(label: "warden.workspace").debug("tracker state not saved at close", metadata: ["cause": "\(error)"])
        }
        _ = git_index_write(index)
        git_index_free(index)
        git_repository_free(repo)
    }

    // MARK: - Snapshots

    /// Records the working tree and reports what changed since the previous snapshot and since base.
    ///
    /// Only paths whose stat data changed are re-hashed; the tree is written incrementally
    /// through the index's tree cache.
    public func snapshot() throws -> WorkspaceSnapshot {
        let tree = try scanChanges()
        let sincePrevious = previousTree.isEqual(to: tree) ? [] : try changesBetween(previousTree, tree)
        let sinceBase = try changesBetween(baseTree, tree)
        previousTree = tree
        currentTreeID = tree.hex
        let gitignoreChanged = sinceBase.contains { $0.path == ".gitignore" || $0.path.hasSuffix("/.gitignore") }
        return WorkspaceSnapshot(treeID: tree.hex, sincePrevious: sincePrevious, sinceBase: sinceBase, gitignoreChanged: gitignoreChanged)
    }

    /// Scans what the watch reports changed, or everything when it cannot tell.
    private func scanChanges() throws -> git_oid {
        guard let watch else { return try scanWorkingTree() }
        switch watch.drain() {
        case .everything(let reason):
            let tree = try scanWorkingTree()
            lastScan = .full(reason: reason)
            if sawMultiplyLinkedFile { watch.giveUp(Self.multiplyLinked) }
            return tree
        case .paths(let dirty) where dirty.count > Self.dirtyPathLimit:
            let tree = try scanWorkingTree()
            lastScan = .full(reason: "\(dirty.count) paths changed")
            return tree
        case .paths(let dirty):
            let tree = try scanWorkingTree(only: dirty)
            guard sawMultiplyLinkedFile else { return tree }
            // A write through one name of a hard-linked file changes the others unseen.
            watch.giveUp(Self.multiplyLinked)
            let full = try scanWorkingTree()
            lastScan = .full(reason: Self.multiplyLinked)
            return full
        }
    }

    private static let multiplyLinked = "a file in the checkout has more than one hard link"

    /// Whether the watch should follow a directory: an ignored one matters only when the
    /// shadow index tracks something below it (a file committed before the ignore rule).
    private func needsWatch(_ directory: [UInt8]) -> Bool {
        // Tracked files first: a lookup in the index, where an ignore check reads the ignore
        // files of every directory above (a fifth of a 5,000-file tracker's start, when every
        // directory was asked).
        var position = 0
        let prefix = directory.map { CChar(bitPattern: $0) } + [CChar(bitPattern: UInt8(ascii: "/")), 0]
        if git_index_find_prefix(&position, index, prefix) == 0 { return true }
        var ignored: Int32 = 0
        let path = directory.map { CChar(bitPattern: $0) } + [0]
        return git_ignore_path_is_ignored(&ignored, repo, path) != 0 || ignored == 0
    }

    /// Brings the shadow index in line with the working tree and writes it as a tree.
    ///
    /// - Parameter only: paths to compare (a directory covers its subtree); nil compares every
    ///   file. Both go through the same libgit2 comparison, so they record the same tree.
    private func scanWorkingTree(only paths: Set<[UInt8]>? = nil) throws -> git_oid {
        lastScan = paths.map { .partial(paths: $0.count) } ?? .full(reason: "requested")
        if paths?.isEmpty == true {
            var tree = git_oid()
            try check(git_index_write_tree(&tree, index), "workspace.snapshot", "cannot write the snapshot tree", context: stateDirectory.path)
            return tree
        }
        var options = git_diff_options()
        git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION))
        options.flags = GIT_DIFF_INCLUDE_UNTRACKED.rawValue
            | GIT_DIFF_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_DIFF_INCLUDE_TYPECHANGE.rawValue
            | GIT_DIFF_UPDATE_INDEX.rawValue
            | GIT_DIFF_SKIP_BINARY_CHECK.rawValue
            | GIT_DIFF_IGNORE_SUBMODULES.rawValue
            | (paths == nil ? 0 : GIT_DIFF_DISABLE_PATHSPEC_MATCH.rawValue)
        options.ignore_submodules = GIT_SUBMODULE_IGNORE_ALL
        // The path list as C strings, alive for both comparison attempts below.
        let pathStrings = (paths ?? []).map { path in strdup(path.map { CChar(bitPattern: $0) } + [0]) }
        defer { pathStrings.forEach { free($0) } }
        var pathPointers = pathStrings
        var diff: OpaquePointer?
        // A file that vanishes while libgit2 looks at it (a process still running in the jail)
        // fails the whole comparison: look again, as the tree has moved on. A lasting failure
        // fails every attempt and is reported.
        let compare = { () -> Int32 in
            pathPointers.withUnsafeMutableBufferPointer { pointers in
                options.pathspec = git_strarray(strings: pointers.baseAddress, count: pointers.count)
                return git_diff_index_to_workdir(&diff, self.repo, self.index, &options)
            }
        }
        var compared = compare()
        var attempts = 1
        while compared < 0 && attempts < Self.scanAttempts {
            compared = compare()
            attempts += 1
        }
        try check(compared, "workspace.snapshot", "cannot compare the working tree with the shadow index", context: checkout.path)
        defer { git_diff_free(diff) }

        var removals: [String] = []
        var additions: [String] = []
        let count = git_diff_num_deltas(diff)
        for i in 0..<count {
            guard let delta = git_diff_get_delta(diff, i)?.pointee else { continue }
            switch delta.status {
            case GIT_DELTA_DELETED:
                if let path = delta.old_file.path { removals.append(String(cString: path)) }
            case GIT_DELTA_MODIFIED, GIT_DELTA_TYPECHANGE, GIT_DELTA_UNTRACKED, GIT_DELTA_ADDED:
                // Submodule links are left as recorded in the base.
                if delta.new_file.mode == UInt16(GIT_FILEMODE_COMMIT.rawValue) { continue }
                if let path = delta.new_file.path { additions.append(String(cString: path)) }
            default:
                continue
            }
        }
        // Removals first: a file replaced by a directory (or back) must leave room for the new entries.
        for path in removals {
            try check(git_index_remove_bypath(index, path), "workspace.snapshot", "cannot drop \(path) from the shadow index", context: checkout.path)
        }
        for path in additions {
            if path.hasSuffix("/") {
                // An untracked directory libgit2 will not enter because it holds a `.git`
                // (a nested repository, or an agent hiding files): record its files anyway.
                try addDirectory(String(path.dropLast()))
            } else {
                try addPath(path)
            }
        }

        var tree = git_oid()
        try check(git_index_write_tree(&tree, index), "workspace.snapshot", "cannot write the snapshot tree", context: stateDirectory.path)
        // The in-memory index is what the next scan uses. Saving it costs a few ms on large
        // trees (4 of a 6 ms watched snapshot on 5,000 files), so skip it when nothing
        // changed, and after watched scans, which name the paths to compare. Saving after a
        // full scan renews the index timestamp, which keeps freshly recorded files out of
        // the "racily clean" set that a full scan must hash.
        if count > 0 {
            if objectCache != nil { unsavedTrees.append(tree) }
            if paths == nil { try saveIndex() }
        }
        if unsavedBytes > Self.objectCacheLimit {
            try persist()
        }
        return tree
    }

    /// Writes the objects of every snapshot so far into the shadow repository's object database on disk.
    ///
    /// Snapshots keep new blobs and trees in memory (written out automatically past 32 MiB and
    /// when the tracker is released). Call this before another process reads the shadow
    /// repository, e.g. to inspect recorded tree ids.
    public func persist() throws {
        guard let objectCache, !unsavedTrees.isEmpty else { return }
        // The objects on disk always form closed sets (the base tree, earlier persisted
        // snapshots), so a tree found on disk needs no walk below it.
        let objectsPath = stateDirectory.appendingPathComponent("shadow.git/objects").path
        var disk: OpaquePointer?
        try check(git_odb_open(&disk, objectsPath), "workspace.state", "cannot open the shadow object database", context: objectsPath)
        defer { git_odb_free(disk) }
        var builder: OpaquePointer?
        try check(git_packbuilder_new(&builder, repo), "workspace.state", "cannot start packing snapshot objects", context: objectsPath)
        defer { git_packbuilder_free(builder) }

        var seen = Set<String>()
        var pending = unsavedTrees
        var inserted = 0
        while var tree = pending.popLast() {
            guard seen.insert(tree.hex).inserted, git_odb_exists_ext(disk, &tree, GIT_ODB_LOOKUP_NO_REFRESH.rawValue) == 0 else { continue }
            try check(git_packbuilder_insert(builder, &tree, nil), "workspace.state", "cannot pack tree \(tree.hex)", context: objectsPath)
            inserted += 1
            var object: OpaquePointer?
            try check(git_tree_lookup(&object, repo, &tree), "workspace.state", "snapshot tree \(tree.hex) is missing", context: objectsPath)
            defer { git_tree_free(object) }
            for i in 0..<git_tree_entrycount(object) {
                guard let entry = git_tree_entry_byindex(object, i), var id = git_tree_entry_id(entry)?.pointee else { continue }
                switch git_tree_entry_type(entry) {
                case GIT_OBJECT_TREE:
                    pending.append(id)
                case GIT_OBJECT_BLOB:
                    guard seen.insert(id.hex).inserted, git_odb_exists_ext(disk, &id, GIT_ODB_LOOKUP_NO_REFRESH.rawValue) == 0 else { continue }
                    try check(git_packbuilder_insert(builder, &id, nil), "workspace.state", "cannot pack blob \(id.hex)", context: objectsPath)
                    inserted += 1
                default:
                    continue  // submodule links name commits of other repositories
                }
            }
        }
        if inserted > 0 {
            let packDirectory = objectsPath + "/pack"
            try check(git_packbuilder_write(builder, packDirectory, 0, nil, nil), "workspace.state", "cannot write snapshot objects", context: packDirectory)
            var odb: OpaquePointer?
            try check(git_repository_odb(&odb, repo), "workspace.state", "cannot open the shadow object database", context: objectsPath)
            defer { git_odb_free(odb) }
            // Make the pack visible before dropping the in-memory copies.
            try check(git_odb_refresh(odb), "workspace.state", "cannot reload the shadow object database", context: objectsPath)
        }
        try check(git_mempack_reset(objectCache), "workspace.state", "cannot clear the in-memory objects", context: objectsPath)
        unsavedTrees.removeAll()
        unsavedBytes = 0
    }

    /// Writes the shadow index to its file. libgit2 checkouts (restore, apply) refuse or
    /// reload an index with unsaved changes, so this runs before them too.
    private func saveIndex() throws {
        try check(git_index_write(index), "workspace.state", "cannot save the shadow index", context: stateDirectory.path)
    }

    /// Records the file or symlink at `path` in the shadow index, read through `CheckoutReader`
    /// so a process in the jail cannot redirect the read to the host. A path that vanished, or
    /// that now runs through a symlink (a directory swapped for a link), is not in the checkout:
    /// it leaves the index, and the next scan sees whatever took its place.
    private func addPath(_ path: String) throws {
        guard let file = try reader.read(path) else {
            _ = git_index_remove_bypath(index, path)
            return
        }
        var content = file.content
        if !file.isSymlink {
            content = try filteredForObjectDatabase(content, path: path)
            if file.info.st_nlink > 1 { sawMultiplyLinkedFile = true }
        }
        var blob = git_oid()
        let written = content.withUnsafeBytes { git_blob_create_from_buffer(&blob, repo, $0.baseAddress, $0.count) }
        try check(written, "workspace.snapshot", "cannot store \(path)", context: checkout.path)
        var entry = git_index_entry()
        entry.ctime = git_index_time(seconds: Int32(truncatingIfNeeded: file.info.st_ctim.tv_sec), nanoseconds: UInt32(truncatingIfNeeded: file.info.st_ctim.tv_nsec))
        entry.mtime = git_index_time(seconds: Int32(truncatingIfNeeded: file.info.st_mtim.tv_sec), nanoseconds: UInt32(truncatingIfNeeded: file.info.st_mtim.tv_nsec))
        entry.dev = UInt32(truncatingIfNeeded: file.info.st_dev)
        entry.ino = UInt32(truncatingIfNeeded: file.info.st_ino)
        entry.uid = file.info.st_uid
        entry.gid = file.info.st_gid
        entry.file_size = UInt32(truncatingIfNeeded: file.info.st_size)
        entry.mode = file.isSymlink ? GIT_FILEMODE_LINK.rawValue
            : file.info.st_mode & S_IXUSR != 0 ? GIT_FILEMODE_BLOB_EXECUTABLE.rawValue : GIT_FILEMODE_BLOB.rawValue
        entry.id = blob
        let added = path.withCString { pointer in
            entry.path = pointer
            return git_index_add(index, &entry)
        }
        try check(added, "workspace.snapshot", "cannot record \(path)", context: checkout.path)
        unsavedBytes += UInt64(content.count)
    }

    /// Applies the checkout's `.gitattributes` filters (line endings, ident) as `git add` would.
    private func filteredForObjectDatabase(_ content: [UInt8], path: String) throws -> [UInt8] {
        var filters: OpaquePointer?
        try check(git_filter_list_load(&filters, repo, nil, path, GIT_FILTER_TO_ODB, GIT_FILTER_DEFAULT.rawValue),
                  "workspace.snapshot", "cannot load the attributes of \(path)", context: checkout.path)
        guard let filters else { return content }
        defer { git_filter_list_free(filters) }
        var output = git_buf()
        defer { git_buf_dispose(&output) }
        let rc = content.withUnsafeBytes { bytes in
            git_filter_list_apply_to_buffer(&output, filters, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        try check(rc, "workspace.snapshot", "cannot filter \(path)", context: checkout.path)
        guard let pointer = output.ptr else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: output.size))
    }

    /// Adds every non-ignored file below `directory`, skipping `.git` entries and never following symlinks.
    private func addDirectory(_ directory: String) throws {
        for entry in try reader.list(directory) where entry.name != ".git" {
            let relative = directory + "/" + entry.name
            var ignored: Int32 = 0
            if git_ignore_path_is_ignored(&ignored, repo, relative) == 0, ignored != 0 { continue }
            switch entry.type {
            case S_IFDIR:
                try addDirectory(relative)
            case S_IFREG, S_IFLNK:
                try addPath(relative)
            default:
                continue
            }
        }
    }

    private func changesBetween(_ old: git_oid, _ new: git_oid) throws -> [FileChange] {
        let diff = try treeDiff(old, new, flags: GIT_DIFF_SKIP_BINARY_CHECK.rawValue | GIT_DIFF_INCLUDE_TYPECHANGE.rawValue, code: "workspace.snapshot")
        defer { git_diff_free(diff) }
        return changes(of: diff)
    }

    /// A tree-to-tree diff inside the shadow repository; the caller frees it.
    private func treeDiff(_ old: git_oid, _ new: git_oid, flags: UInt32, code: String) throws -> OpaquePointer {
        var oldID = old
        var newID = new
        var oldTree: OpaquePointer?
        var newTree: OpaquePointer?
        defer {
            git_tree_free(oldTree)
            git_tree_free(newTree)
        }
        try check(git_tree_lookup(&oldTree, repo, &oldID), code, "tree \(old.hex) is not in the shadow repository", context: stateDirectory.path)
        try check(git_tree_lookup(&newTree, repo, &newID), code, "tree \(new.hex) is not in the shadow repository", context: stateDirectory.path)
        var options = git_diff_options()
        git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION))
        options.flags = flags | GIT_DIFF_IGNORE_SUBMODULES.rawValue
        options.ignore_submodules = GIT_SUBMODULE_IGNORE_ALL
        var diff: OpaquePointer?
        try check(git_diff_tree_to_tree(&diff, repo, oldTree, newTree, &options), code, "cannot compare trees \(old.hex) and \(new.hex)", context: stateDirectory.path)
        guard let diff else {
            throw WardenError(code, "libgit2 returned no diff", context: stateDirectory.path)
        }
        return diff
    }

    // MARK: - Diff

    /// The unified diff from the base tree to the working tree as it is now, or to `treeID` when given.
    ///
    /// New files are included and binary files appear as git binary patches, so the result
    /// applies with `git apply` to a clean checkout of the base commit. Bytes that are not
    /// UTF-8 are replaced; use `diffData(of:)` when that matters.
    public func diff(of treeID: String? = nil) throws -> String {
        String(decoding: try diffData(of: treeID), as: UTF8.self)
    }

    /// The bytes of `diff(of:)`.
    public func diffData(of treeID: String? = nil) throws -> Data {
        let target: git_oid
        if let treeID {
            target = try parseTreeID(treeID, code: "workspace.diff")
        } else {
            // Scan without moving "previous": the next snapshot still reports everything since the last one.
            target = try scanWorkingTree()
        }
        let diff = try treeDiff(baseTree, target, flags: GIT_DIFF_SHOW_BINARY.rawValue, code: "workspace.diff")
        defer { git_diff_free(diff) }
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        try check(git_diff_to_buf(&buffer, diff, GIT_DIFF_FORMAT_PATCH), "workspace.diff", "cannot format the diff", context: checkout.path)
        guard let pointer = buffer.ptr else { return Data() }
        return Data(bytes: pointer, count: buffer.size)
    }

    // MARK: - Apply

    /// Applies a unified diff (as produced by `git diff` or `diff()`) to the checkout's working tree.
    ///
    /// Nothing is written when any hunk fails. The change shows up in the next snapshot.
    public func apply(patch: String) throws {
        try apply(patchData: Data(patch.utf8))
    }

    /// Applies the bytes of a unified diff to the working tree.
    public func apply(patchData: Data) throws {
        var diff: OpaquePointer?
        let parseRC = patchData.withUnsafeBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self) else {
                return "".withCString { git_diff_from_buffer(&diff, $0, 0) }
            }
            return git_diff_from_buffer(&diff, base, bytes.count)
        }
        try check(parseRC, "workspace.apply", "the patch does not parse", context: checkout.path)
        defer { git_diff_free(diff) }
        // libgit2's message names the hunk but not the file: remember which delta was being applied.
        let current = CurrentPath()
        var options = git_apply_options()
        git_apply_options_init(&options, UInt32(GIT_APPLY_OPTIONS_VERSION))
        options.delta_cb = { delta, payload in
            guard let delta, let payload else { return 0 }
            let current = Unmanaged<CurrentPath>.fromOpaque(payload).takeUnretainedValue()
            if let path = delta.pointee.new_file.path ?? delta.pointee.old_file.path {
                current.path = String(cString: path)
            }
            return 0
        }
        options.payload = Unmanaged.passUnretained(current).toOpaque()
        try saveIndex()
        let rc = withExtendedLifetime(current) { git_apply(repo, diff, GIT_APPLY_LOCATION_WORKDIR, &options) }
        let target = current.path.map { " to \($0)" } ?? ""
        try check(rc, "workspace.apply", "the patch does not apply\(target)", context: checkout.path)
    }

    private final class CurrentPath {
        var path: String?
    }

    // MARK: - Restore

    /// Makes the working tree equal to a snapshot tree and returns the snapshot taken afterwards.
    ///
    /// Files added since are removed, deleted and modified ones rewritten; ignored files are
    /// left alone. The returned snapshot's `sincePrevious` lists what the restore changed.
    @discardableResult
    public func restore(to treeID: String) throws -> WorkspaceSnapshot {
        var target = try parseTreeID(treeID, code: "workspace.restore")
        // Bring the index up to date first: it is the baseline checkout compares against,
        // so every file currently present counts as tracked and is removed or rewritten.
        _ = try scanWorkingTree()
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, repo, &target), "workspace.restore", "tree \(treeID) is not a snapshot of this workspace", context: stateDirectory.path)
        defer { git_tree_free(tree) }
        var options = git_checkout_options()
        git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION))
        options.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue | GIT_CHECKOUT_REMOVE_UNTRACKED.rawValue
        try saveIndex()
        try check(git_checkout_tree(repo, tree, &options), "workspace.restore", "cannot check out tree \(treeID)", context: checkout.path)
        let after = try snapshot()
        if after.treeID != target.hex {
            throw WardenError("workspace.restore", "the working tree does not match \(treeID) after restoring (now \(after.treeID))", context: checkout.path)
        }
        return after
    }

    // MARK: - Helpers

    private func parseTreeID(_ treeID: String, code: String) throws -> git_oid {
        guard let oid = git_oid(hex: treeID) else {
            throw WardenError(code, "\(treeID) is not a 40-digit tree id", context: stateDirectory.path)
        }
        return oid
    }

    static func lookupID(_ text: String, odb: OpaquePointer?, context: String) throws -> git_oid {
        if let full = git_oid(hex: text) { return full }
        var short = git_oid()
        guard text.utf8.count >= 4, git_oid_fromstrn(&short, text, text.utf8.count) == 0 else {
            throw WardenError("workspace.open", "\(text) is not a commit id", context: context)
        }
        var full = git_oid()
        try check(git_odb_exists_prefix(&full, odb, &short, text.utf8.count), "workspace.open", "commit \(text) not found", context: context)
        return full
    }
}
