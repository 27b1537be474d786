/// How a path differs between two states of a checkout.
public enum ChangeStatus: String, Sendable, Codable, Hashable {
    case added
    case modified
    case deleted
}

/// One changed path in a checkout, relative to its root.
public struct FileChange: Sendable, Codable, Hashable {
    public var path: String
    public var status: ChangeStatus

    public init(path: String, status: ChangeStatus) {
        self.path = path
        self.status = status
    }
}

/// The state of a checkout after a command, as recorded by the workspace tracker.
public struct WorkspaceSnapshot: Sendable, Codable, Hashable {
    /// The id of the git tree object holding the checkout's tracked and untracked files.
    public var treeID: String
    /// Paths that changed since the previous snapshot.
    public var sincePrevious: [FileChange]
    /// Paths that differ from the base commit's tree.
    public var sinceBase: [FileChange]
    /// True when some `.gitignore` differs from the base: ignore rules may hide files from the diff.
    public var gitignoreChanged: Bool

    public init(treeID: String, sincePrevious: [FileChange], sinceBase: [FileChange], gitignoreChanged: Bool) {
        self.treeID = treeID
        self.sincePrevious = sincePrevious
        self.sinceBase = sinceBase
        self.gitignoreChanged = gitignoreChanged
    }
}
