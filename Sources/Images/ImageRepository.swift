import Foundation
import Sandbox
import WardenCore

/// The repository an image keeps for its task (SWE-bench's `/testbed`: a git repository at the
/// base commit), used as the task's repository when `--repos` has none.
///
/// The image's files belong to the jail's identity, not to the harness, so libgit2 (rightly)
/// refuses to open that repository as the harness. Warden opens none of it: it writes, once per
/// image, a bare repository of its own whose only content is an alternate pointing at the
/// image's object directory. Checkouts are materialized from that as from any repository (only
/// the objects reachable from the base commit: none of the image's config, hooks, refs or
/// remotes), and nothing writes to the image. Since the image is not trusted, the path and the
/// whole `.git` must be real directories and files inside the rootfs: a symlink, a `.git` file
/// (a worktree link), `commondir` or alternates of its own could point libgit2 at the host.
public enum ImageRepository {
    /// A bare repository (under the store's `repositories/`) that reads the objects of the
    /// image's repository, made on first use.
    public static func repository(of image: JailImage, store: ImageStore) async throws -> URL {
        let objects = try locate(in: image).appendingPathComponent(".git/objects")
        let name = URL(fileURLWithPath: image.rootfs).deletingLastPathComponent().lastPathComponent
        let bare = store.directory.appendingPathComponent("repositories/\(name)")
        try await PublishedDirectory.ensure(bare, lock: store.directory.appendingPathComponent("locks/repository-\(name).lock")) { partial in
            for directory in ["objects/info", "refs/heads", "refs/tags"] {
                try FileManager.default.createDirectory(at: partial.appendingPathComponent(directory), withIntermediateDirectories: true)
            }
            try Data("ref: refs/heads/main\n".utf8).write(to: partial.appendingPathComponent("HEAD"))
            try Data("[core]\n\trepositoryformatversion = 0\n\tbare = true\n".utf8).write(to: partial.appendingPathComponent("config"))
            try Data((objects.path + "\n").utf8).write(to: partial.appendingPathComponent("objects/info/alternates"))
        }
        return bare
    }

    /// The image's repository directory on the host (at its `checkoutMountPoint`), checked.
    static func locate(in image: JailImage) throws -> URL {
        let path = image.checkoutMountPoint
        let components = path.split(separator: "/").map(String.init)
        guard !components.isEmpty, !components.contains(".."), !components.contains(".") else {
            throw WardenError("image.repository", "the image's repository directory \(path) is not a plain absolute path", context: image.name)
        }
        var directory = URL(fileURLWithPath: image.rootfs)
        for component in components + [".git"] {
            directory.appendPathComponent(component)
            guard kind(of: directory.path) == S_IFDIR else {
                throw WardenError("image.repository", "the image has no git repository at \(path) (\(directory.path.dropFirst(image.rootfs.count)) "
                    + "is not a directory); pass --repos with the task's repository", context: image.name)
            }
        }
        let git = directory
        for unsafe in ["commondir", "objects/info/alternates", "objects/info/http-alternates"]
        where kind(of: git.appendingPathComponent(unsafe).path) != nil {
            throw WardenError("image.repository", "the image's repository at \(path) has .git/\(unsafe), which points outside it", context: image.name)
        }
        guard let walk = FileManager.default.enumerator(atPath: git.path) else {
            throw WardenError("image.repository", "cannot read the image's repository at \(path)", context: image.name)
        }
        while let entry = walk.nextObject() as? String {
            if kind(of: git.appendingPathComponent(entry).path) == S_IFLNK {
                throw WardenError("image.repository", "the image's repository at \(path) has a symlink in .git (\(entry))", context: image.name)
            }
        }
        return directory.deletingLastPathComponent()
    }

    /// The file type of `path` without following a symlink; nil when nothing is there.
    private static func kind(of path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }
}
