import CGit2
import Foundation
import WardenCore

/// A checkout compared with one of its commits by libgit2, for scoring: which paths the work
/// tree changed (whatever wrote them), what the commit held there, and putting that back.
///
/// Opened after a patch is applied, so nothing here runs git hooks, filters or fsmonitor.
public final class CheckoutDiff {
    private let repo: OpaquePointer
    private let tree: OpaquePointer
    public let checkout: URL

    public init(checkout: URL, commit: String) throws {
        try ensureLibgit2()
        self.checkout = checkout
        var repo: OpaquePointer?
        try check(git_repository_open_ext(&repo, checkout.path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil),
                  "workspace.diff", "cannot open the checkout's repository", context: checkout.path)
        guard let repo else { throw WardenError("workspace.diff", "libgit2 returned no repository", context: checkout.path) }
        var object: OpaquePointer?
        var tree: OpaquePointer?
        let rc = git_revparse_single(&object, repo, commit)
        if rc >= 0 {
            _ = git_object_peel(&tree, object, GIT_OBJECT_TREE)
            git_object_free(object)
        }
        guard let tree else {
            git_repository_free(repo)
            throw WardenError("workspace.diff", "cannot resolve \(commit) to a tree: \(lastGitMessage())", context: checkout.path)
        }
        self.repo = repo
        self.tree = tree
    }

    deinit {
        git_tree_free(tree)
        git_repository_free(repo)
    }

    /// Every path where the work tree differs from the commit's tree: added, deleted, modified,
    /// mode and type changes, untracked and ignored files included; both sides of a rename.
    public func changedPaths() throws -> [String] {
        var options = git_diff_options()
        git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION))
        // Ignored files count: a patch can add a .gitignore that hides its own conftest.py.
        options.flags = GIT_DIFF_INCLUDE_UNTRACKED.rawValue | GIT_DIFF_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_DIFF_INCLUDE_IGNORED.rawValue | GIT_DIFF_RECURSE_IGNORED_DIRS.rawValue
            | GIT_DIFF_INCLUDE_TYPECHANGE.rawValue | GIT_DIFF_INCLUDE_TYPECHANGE_TREES.rawValue
            | GIT_DIFF_IGNORE_SUBMODULES.rawValue
        options.ignore_submodules = GIT_SUBMODULE_IGNORE_ALL
        var diff: OpaquePointer?
        try check(git_diff_tree_to_workdir(&diff, repo, tree, &options), "workspace.diff",
                  "cannot compare the work tree with the base tree", context: checkout.path)
        defer { git_diff_free(diff) }
        var find = git_diff_find_options()
        git_diff_find_options_init(&find, UInt32(GIT_DIFF_FIND_OPTIONS_VERSION))
        find.flags = GIT_DIFF_FIND_RENAMES.rawValue | GIT_DIFF_FIND_FOR_UNTRACKED.rawValue
        try check(git_diff_find_similar(diff, &find), "workspace.diff", "cannot detect renames", context: checkout.path)
        var paths: [String] = []
        for index in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, index)?.pointee else { continue }
            for pointer in [delta.old_file.path, delta.new_file.path] {
                if let pointer { paths.append(String(cString: pointer)) }
            }
        }
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    /// The commit's top-level entry names, and `src/NAME` for the entries of a top-level `src/`.
    public func topLevelNames() throws -> Set<String> {
        var names = Set<String>()
        for index in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, index), let name = git_tree_entry_name(entry) else { continue }
            names.insert(String(cString: name))
        }
        if let source = try entry(at: "src") {
            defer { git_tree_entry_free(source) }
            if git_tree_entry_type(source) == GIT_OBJECT_TREE {
                var subtree: OpaquePointer?
                try check(git_tree_lookup(&subtree, repo, git_tree_entry_id(source)), "workspace.diff", "cannot read src/ of the base tree", context: checkout.path)
                defer { git_tree_free(subtree) }
                for index in 0..<git_tree_entrycount(subtree) {
                    guard let child = git_tree_entry_byindex(subtree, index), let name = git_tree_entry_name(child) else { continue }
                    names.insert("src/" + String(cString: name))
                }
            }
        }
        return names
    }

    /// The bytes of `path` in the commit; nil when the commit has no file there.
    public func baseContents(of path: String) throws -> Data? {
        guard let entry = try entry(at: path), git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return nil }
        defer { git_tree_entry_free(entry) }
        return try blobData(git_tree_entry_id(entry))
    }

    /// Makes `path` in the work tree what it is in the commit (a file, a symlink, a directory
    /// tree), or removes it when the commit has nothing there. Symlinks on the way are replaced
    /// by the directories the commit has, so a restore never writes through one.
    public func restore(_ path: String) throws {
        let components = path.split(separator: "/").map(String.init)
        guard !components.isEmpty, !components.contains(".."), !components.contains("."), components.first != ".git" else {
            throw WardenError("workspace.restore", "refusing to restore an unsafe path", context: path)
        }
        var directory = checkout
        for component in components.dropLast() {
            directory.appendPathComponent(component)
            var info = stat()
            if lstat(directory.path, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
                try FileManager.default.removeItem(at: directory)
            }
        }
        let target = checkout.appendingPathComponent(path)
        var info = stat()
        if lstat(target.path, &info) == 0 { try FileManager.default.removeItem(at: target) }
        guard let entry = try entry(at: path) else { return }
        defer { git_tree_entry_free(entry) }
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try write(entry, to: target)
    }

    private func write(_ entry: OpaquePointer, to target: URL) throws {
        let mode = git_tree_entry_filemode(entry)
        switch mode {
        case GIT_FILEMODE_TREE:
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            var subtree: OpaquePointer?
            try check(git_tree_lookup(&subtree, repo, git_tree_entry_id(entry)), "workspace.restore", "cannot read a base tree", context: target.path)
            defer { git_tree_free(subtree) }
            for index in 0..<git_tree_entrycount(subtree) {
                guard let child = git_tree_entry_byindex(subtree, index), let name = git_tree_entry_name(child) else { continue }
                try write(child, to: target.appendingPathComponent(String(cString: name)))
            }
        case GIT_FILEMODE_LINK:
            let destination = String(decoding: try blobData(git_tree_entry_id(entry)), as: UTF8.self)
            try FileManager.default.createSymbolicLink(atPath: target.path, withDestinationPath: destination)
        case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE:
            try blobData(git_tree_entry_id(entry)).write(to: target)
            chmod(target.path, mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0o755 : 0o644)
        default:
            break  // submodules: nothing to write
        }
    }

    /// The tree entry at `path`; the caller frees it.
    private func entry(at path: String) throws -> OpaquePointer? {
        var entry: OpaquePointer?
        let rc = git_tree_entry_bypath(&entry, tree, path)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try check(rc, "workspace.restore", "cannot look up the base entry", context: path)
        return entry
    }

    private func blobData(_ id: UnsafePointer<git_oid>?) throws -> Data {
        var blob: OpaquePointer?
        try check(git_blob_lookup(&blob, repo, id), "workspace.restore", "cannot read a base blob", context: checkout.path)
        defer { git_blob_free(blob) }
        guard let content = git_blob_rawcontent(blob) else { return Data() }
        return Data(bytes: content, count: Int(git_blob_rawsize(blob)))
    }
}
