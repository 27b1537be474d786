import Foundation
import WardenCore

/// Removes directory trees that a jail may have filled however it liked: paths longer than
/// PATH_MAX, chains of any depth, directories without permission bits. `FileManager` works with
/// whole paths and gives up on the first two, so an agent could leave work directories behind
/// on every episode.
///
/// Everything goes through descriptors (`openat`, `unlinkat`), never through a symlink, and at
/// most `maximumDepth` directories are open at once: a deeper subtree is first moved up to the
/// top directory and emptied from there.
public enum HostTree {
    static let maximumDepth = 32

    /// Removes `path` and everything under it. A missing path is not an error.
    public static func remove(atPath path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw failure("cannot examine", path)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            guard unlink(path) == 0 else { throw failure("cannot remove", path) }
            return
        }
        let top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else { throw failure("cannot open", path) }
        defer { close(top) }
        var removal = Removal(top: top)
        try removal.empty(top, path: path, depth: 0)
        while let moved = removal.movedUp.popLast() {
            let name = Array(moved.utf8CString)
            let directory = try removal.open(name, in: top, path: path)
            defer { close(directory) }
            try removal.empty(directory, path: path + "/" + moved, depth: 1)
            try removal.removeDirectory(name, in: top, path: path)
        }
        guard rmdir(path) == 0 else { throw failure("cannot remove", path) }
    }

    private struct Removal {
        let top: Int32
        var movedUp: [String] = []
        var moves = 0

        /// Removes every entry of the open directory `directory`.
        mutating func empty(_ directory: Int32, path: String, depth: Int) throws {
            for name in try entries(of: directory, path: path) {
                if unlinkat(directory, name, 0) == 0 || errno == ENOENT { continue }
                let shown = path + "/" + String(cString: name)
                guard errno == EISDIR else { throw failure("cannot remove", shown) }
                if depth >= HostTree.maximumDepth {
                    let moved = ".warden-removal-\(getpid())-\(moves)"
                    moves += 1
                    guard renameat(directory, name, top, moved) == 0 else { throw failure("cannot move up", shown) }
                    movedUp.append(moved)
                    continue
                }
                let child = try open(name, in: directory, path: path)
                defer { close(child) }
                try empty(child, path: shown, depth: depth + 1)
                try removeDirectory(name, in: directory, path: path)
            }
        }

        /// Opens the subdirectory `name`, first giving it back the permissions the jail took away.
        func open(_ name: [CChar], in directory: Int32, path: String) throws -> Int32 {
            let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
            var child = openat(directory, name, flags)
            if child < 0 && errno == EACCES && fchmodat(directory, name, 0o700, 0) == 0 {
                child = openat(directory, name, flags)
            }
            guard child >= 0 else { throw failure("cannot open", path + "/" + String(cString: name)) }
            // Entries can be removed only from a directory with write and search permission.
            var info = stat()
            if fstat(child, &info) == 0 && info.st_mode & 0o300 != 0o300 { fchmod(child, 0o700) }
            return child
        }

        func removeDirectory(_ name: [CChar], in directory: Int32, path: String) throws {
            guard unlinkat(directory, name, AT_REMOVEDIR) == 0 || errno == ENOENT else { throw failure("cannot remove", path + "/" + String(cString: name)) }
        }

        /// The names in `directory`, as bytes: a name that is not UTF-8 must reach unlinkat intact.
        func entries(of directory: Int32, path: String) throws -> [[CChar]] {
            let copy = dup(directory)
            guard copy >= 0, let stream = fdopendir(copy) else {
                if copy >= 0 { close(copy) }
                throw failure("cannot list", path)
            }
            defer { closedir(stream) }
            var names: [[CChar]] = []
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.bindMemory(to: CChar.self).prefix { $0 != 0 }) + [0] }
                if name != [46, 0] && name != [46, 46, 0] { names.append(name) }
            }
            return names
        }
    }

    private static func failure(_ what: String, _ path: String) -> WardenError {
        let cause = String(cString: strerror(errno))
        // The path can be far longer than anyone wants to read.
        let shown = path.count > 300 ? String(path.prefix(150)) + "…" + String(path.suffix(100)) : path
        return WardenError("host.remove", "\(what) \(shown): \(cause)")
    }
}
