import CGit2
import Foundation
import WardenCore

/// Turns a folder of plain files into a git repository with one commit whose author, committer
/// and date are fixed, so the commit id is the same on every machine.
public enum RepositoryBuilder {
    /// The identity and time stamped on every commit made here.
    public static let authorName = "Warden"
    public static let authorEmail = "warden@warden.invalid"
    public static let commitTime: Int64 = 1_700_000_000

    /// Initialises `directory` as a repository (branch `main`) and commits every file in it
    /// that is not ignored. Returns the commit id.
    @discardableResult
    public static func commitAll(in directory: URL, message: String) throws -> String {
        try ensureLibgit2()
        let path = directory.path
        var repository: OpaquePointer?
        var options = git_repository_init_options()
        git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION))
        options.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue
        let initialized = "main".withCString { head in
            options.initial_head = head
            return git_repository_init_ext(&repository, path, &options)
        }
        try check(initialized, "workspace.build", "cannot initialise a repository", context: path)
        defer { git_repository_free(repository) }

        var index: OpaquePointer?
        try check(git_repository_index(&index, repository), "workspace.build", "cannot open the index", context: path)
        defer { git_index_free(index) }
        var everything = git_strarray()
        try check(git_index_add_all(index, &everything, 0, nil, nil), "workspace.build", "cannot add the files", context: path)
        try check(git_index_write(index), "workspace.build", "cannot write the index", context: path)
        var treeID = git_oid()
        try check(git_index_write_tree(&treeID, index), "workspace.build", "cannot write the tree", context: path)
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, repository, &treeID), "workspace.build", "cannot read the tree back", context: path)
        defer { git_tree_free(tree) }

        var signature: UnsafeMutablePointer<git_signature>?
        try check(git_signature_new(&signature, authorName, authorEmail, commitTime, 0), "workspace.build", "cannot make a signature")
        defer { git_signature_free(signature) }
        var commitID = git_oid()
        let committed = git_commit_create(&commitID, repository, "HEAD", signature, signature, "UTF-8", message, tree, 0, nil)
        try check(committed, "workspace.build", "cannot commit", context: path)
        return commitID.hex
    }
}
