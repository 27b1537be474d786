import CGit2
import Foundation
import WardenCore

extension WorkspaceTracker {
    /// The branch a materialized checkout has checked out.
    public static let materializedBranch = "main"

    /// Creates the empty directories a checkout will fill, `.git` included, so that a jail can
    /// bind them (`.git` read-only where its profile says so) while ``materialize(source:commit:into:)``
    /// writes the files: the bind shows the same directories, filled or not.
    public static func reserveCheckout(at destination: URL) throws {
        do {
            try FileManager.default.createDirectory(at: destination.appendingPathComponent(".git"), withIntermediateDirectories: true)
        } catch {
            throw WardenError("workspace.materialize", "cannot create the checkout directory: \(error)", context: destination.path)
        }
    }

    /// Creates a fresh repository at `destination` whose only history is `commit` and its ancestors.
    ///
    /// Exactly the objects reachable from `commit` are copied (a pack built from a revision
    /// walk), so commits made after it in `source` cannot be read in the new repository. The
    /// result has one branch, `main`, checked out at `commit`; no remotes, tags, other
    /// branches or reflogs (`core.logAllRefUpdates` is false).
    ///
    /// - Parameters:
    ///   - source: A normal or bare repository.
    ///   - commit: Anything that resolves to a commit in `source` (id, branch, tag).
    ///   - destination: A path that does not exist yet, an empty directory, or one that
    ///     ``reserveCheckout(at:)`` made.
    public static func materialize(source: URL, commit: String, into destination: URL) throws {
        try materialize(source: source, commit: commit, into: destination, packs: .shared)
    }

    static func materialize(source: URL, commit: String, into destination: URL, packs: PackCache) throws {
        try ensureLibgit2()
        let context = "\(source.path) @ \(commit)"
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: destination.path)) ?? []
        let reserved = existing == [".git"]
            && (try? FileManager.default.contentsOfDirectory(atPath: destination.path + "/.git"))?.isEmpty == true
        if !existing.isEmpty, !reserved {
            throw WardenError("workspace.materialize", "destination \(destination.path) exists and is not empty", context: context)
        }

        var sourceRepo: OpaquePointer?
        try check(git_repository_open_ext(&sourceRepo, source.path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil), "workspace.materialize", "cannot open source repository", context: context)
        defer { git_repository_free(sourceRepo) }
        var object: OpaquePointer?
        try check(git_revparse_single(&object, sourceRepo, commit), "workspace.materialize", "cannot resolve \(commit) in \(source.path)", context: context)
        defer { git_object_free(object) }
        var commitObject: OpaquePointer?
        try check(git_object_peel(&commitObject, object, GIT_OBJECT_COMMIT), "workspace.materialize", "\(commit) is not a commit", context: context)
        defer { git_object_free(commitObject) }
        guard var commitID = git_object_id(commitObject)?.pointee else {
            throw WardenError("workspace.materialize", "cannot read the id of \(commit)", context: context)
        }

        // A fresh repository, without templates' hooks, whose HEAD names the one branch.
        var initOptions = git_repository_init_options()
        git_repository_init_options_init(&initOptions, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION))
        initOptions.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue | GIT_REPOSITORY_INIT_NO_REINIT.rawValue
        var destinationRepo: OpaquePointer?
        let initRC = materializedBranch.withCString { head -> Int32 in
            initOptions.initial_head = head
            return git_repository_init_ext(&destinationRepo, destination.path, &initOptions)
        }
        try check(initRC, "workspace.materialize", "cannot create repository at \(destination.path)", context: context)
        defer { git_repository_free(destinationRepo) }

        var config: OpaquePointer?
        try check(git_repository_config(&config, destinationRepo), "workspace.materialize", "cannot open the new repository's config", context: destination.path)
        defer { git_config_free(config) }
        try check(git_config_set_bool(config, "core.logAllRefUpdates", 0), "workspace.materialize", "cannot disable reflogs", context: destination.path)

        guard let gitDirectory = git_repository_path(destinationRepo).map({ String(cString: $0) }) else {
            throw WardenError("workspace.materialize", "the new repository has no git directory", context: destination.path)
        }
        let packDirectory = gitDirectory + "objects/pack"
        // A shallow source reaches less history; deepening it changes its `shallow` file.
        let sourceGitDirectory = git_repository_path(sourceRepo).map { String(cString: $0) } ?? source.path
        let sourceKey = [URL(fileURLWithPath: source.path).resolvingSymlinksInPath().path, commitID.hex, fileSignature(of: sourceGitDirectory + "/shallow")]
            .joined(separator: "\u{0}")
        try packs.install(key: sourceKey, into: packDirectory) {
            // Exactly the objects reachable from the commit.
            var walk: OpaquePointer?
            try check(git_revwalk_new(&walk, sourceRepo), "workspace.materialize", "cannot walk history", context: context)
            defer { git_revwalk_free(walk) }
            try check(git_revwalk_push(walk, &commitID), "workspace.materialize", "cannot walk from \(commit)", context: context)
            var builder: OpaquePointer?
            try check(git_packbuilder_new(&builder, sourceRepo), "workspace.materialize", "cannot start a pack", context: context)
            defer { git_packbuilder_free(builder) }
            try check(git_packbuilder_insert_walk(builder, walk), "workspace.materialize", "cannot collect the history of \(commit)", context: context)
            // Delta-search threads pay off for large histories; for a small one, starting them
            // cost more than the search.
            _ = git_packbuilder_set_threads(builder, git_packbuilder_object_count(builder) < 4_096 ? 1 : 0)
            try check(git_packbuilder_write(builder, packDirectory, 0, nil, nil), "workspace.materialize", "cannot write the pack", context: packDirectory)
        }

        var odb: OpaquePointer?
        try check(git_repository_odb(&odb, destinationRepo), "workspace.materialize", "cannot open the new object database", context: destination.path)
        defer { git_odb_free(odb) }
        try check(git_odb_refresh(odb), "workspace.materialize", "cannot load the new pack", context: destination.path)

        var reference: OpaquePointer?
        try check(git_reference_create(&reference, destinationRepo, "refs/heads/\(materializedBranch)", &commitID, 1, nil), "workspace.materialize", "cannot create branch \(materializedBranch)", context: destination.path)
        git_reference_free(reference)

        var checkoutOptions = git_checkout_options()
        git_checkout_options_init(&checkoutOptions, UInt32(GIT_CHECKOUT_OPTIONS_VERSION))
        checkoutOptions.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue
        // With the user's configuration shut out, only a `.gitattributes` in the tree can ask
        // for a filter. Without one, libgit2's attribute lookups for each file (a realpath of
        // its directory, and a look for attribute files in it) are a third of the checkout.
        checkoutOptions.disable_filters = try treeHasAttributeFiles(destinationRepo, commit: &commitID) ? 0 : 1
        try check(git_checkout_head(destinationRepo, &checkoutOptions), "workspace.materialize", "cannot check out \(commit)", context: destination.path)

        // Belt and braces: no reflog may name anything, even the commit itself.
        if FileManager.default.fileExists(atPath: gitDirectory + "logs") {
            try FileManager.default.removeItem(atPath: gitDirectory + "logs")
        }
    }

    /// Whether any directory of the commit's tree has a `.gitattributes` entry.
    private static func treeHasAttributeFiles(_ repo: OpaquePointer?, commit: inout git_oid) throws -> Bool {
        var commitObject: OpaquePointer?
        try check(git_commit_lookup(&commitObject, repo, &commit), "workspace.materialize", "cannot read commit \(commit.hex)")
        defer { git_commit_free(commitObject) }
        var tree: OpaquePointer?
        try check(git_commit_tree(&tree, commitObject), "workspace.materialize", "cannot read the tree of \(commit.hex)")
        defer { git_tree_free(tree) }
        var found = false
        let walked = withUnsafeMutablePointer(to: &found) { flag in
            git_tree_walk(tree, GIT_TREEWALK_PRE, { _, entry, payload in
                guard let name = git_tree_entry_name(entry), strcmp(name, ".gitattributes") == 0 else { return 0 }
                payload?.assumingMemoryBound(to: Bool.self).pointee = true
                return -1  // found: stop walking
            }, flag)
        }
        if !found { try check(walked, "workspace.materialize", "cannot walk the tree of \(commit.hex)") }
        return found
    }
}
