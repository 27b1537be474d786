import Foundation
import WardenCore

/// Reads files of a checkout that a jailed process may be changing while we read.
///
/// Every path is walked from a descriptor of the checkout's root one component at a time with
/// `O_NOFOLLOW`, so a directory swapped for a symlink (`d -> /root/.ssh`) between libgit2's scan
/// and our read makes the read fail instead of reaching the host. Symlinks themselves are read
/// as links (`readlinkat` in their directory), never followed.
final class CheckoutReader {
    /// One file's content (a link's target for a symlink) and the status of what was read.
    struct File {
        var content: [UInt8]
        var info: stat
        var isSymlink: Bool
    }

    struct Entry {
        var name: String
        /// `S_IFDIR`, `S_IFREG`, `S_IFLNK`, ... of the entry itself.
        var type: mode_t
    }

    let root: String
    private let rootDescriptor: Int32

    init(_ root: String) throws {
        self.root = root
        rootDescriptor = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootDescriptor < 0 {
            throw WardenError("workspace.open", "cannot open the checkout: \(String(cString: strerror(errno)))", context: root)
        }
    }

    deinit {
        close(rootDescriptor)
    }

    /// Errors meaning "not in the checkout (any more)": gone, or a component is now a symlink
    /// or no longer a directory.
    private static func isAbsence(_ code: Int32) -> Bool {
        code == ENOENT || code == ENOTDIR || code == ELOOP
    }

    /// Opens the directory holding `path`'s last component; returns it and that component's name.
    /// nil when a component is missing or is not a real directory.
    private func openParent(of path: String) throws -> (descriptor: Int32, name: String)? {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let name = components.last, !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw WardenError("workspace.snapshot", "unexpected path \(path) from the working tree scan", context: root)
        }
        var current = rootDescriptor
        for component in components.dropLast() {
            let next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            if current != rootDescriptor { close(current) }
            if next < 0 {
                if Self.isAbsence(code) { return nil }
                throw WardenError("workspace.snapshot", "cannot open the directory of \(path): \(String(cString: strerror(code)))", context: root)
            }
            current = next
        }
        return (current, name)
    }

    /// The content of the regular file or symlink at `path`; nil when it is neither, is gone,
    /// or is reached through a symlink.
    func read(_ path: String) throws -> File? {
        guard let (parent, name) = try openParent(of: path) else { return nil }
        defer { if parent != rootDescriptor { close(parent) } }
        // O_NONBLOCK: a FIFO planted in the checkout must not hang the harness.
        let descriptor = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            if code == ELOOP { return try readLink(parent, name, path: path) }
            if Self.isAbsence(code) { return nil }
            throw WardenError("workspace.snapshot", "cannot open \(path): \(String(cString: strerror(code)))", context: root)
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw WardenError("workspace.snapshot", "cannot stat \(path): \(String(cString: strerror(errno)))", context: root)
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return nil }
        var content: [UInt8] = []
        content.reserveCapacity(Int(info.st_size))
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw WardenError("workspace.snapshot", "cannot read \(path): \(String(cString: strerror(errno)))", context: root)
            }
            if count == 0 { break }
            content += buffer[0..<count]
        }
        return File(content: content, info: info, isSymlink: false)
    }

    /// The target of the symlink `name` in `parent`. Both calls name one component in a
    /// directory we hold open, so nothing can redirect them.
    private func readLink(_ parent: Int32, _ name: String, path: String) throws -> File? {
        var info = stat()
        if fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) < 0 {
            if Self.isAbsence(errno) { return nil }
            throw WardenError("workspace.snapshot", "cannot stat the link \(path): \(String(cString: strerror(errno)))", context: root)
        }
        guard info.st_mode & S_IFMT == S_IFLNK else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlinkat(parent, name, &buffer, buffer.count)
        if length < 0 {
            if Self.isAbsence(errno) || errno == EINVAL { return nil }  // replaced meanwhile: the next scan sees it
            throw WardenError("workspace.snapshot", "cannot read the link \(path): \(String(cString: strerror(errno)))", context: root)
        }
        return File(content: buffer[0..<length].map { UInt8(bitPattern: $0) }, info: info, isSymlink: true)
    }

    /// The entries of the directory at `path` (empty when gone or reached through a symlink).
    func list(_ path: String) throws -> [Entry] {
        guard let (parent, name) = try openParent(of: path) else { return [] }
        defer { if parent != rootDescriptor { close(parent) } }
        let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if descriptor < 0 {
            if Self.isAbsence(errno) { return [] }
            throw WardenError("workspace.snapshot", "cannot open the directory \(path): \(String(cString: strerror(errno)))", context: root)
        }
        guard let stream = fdopendir(descriptor) else {
            close(descriptor)
            throw WardenError("workspace.snapshot", "cannot list \(path): \(String(cString: strerror(errno)))", context: root)
        }
        defer { closedir(stream) }
        var entries: [Entry] = []
        while let entry = readdir(stream) {
            let entryName = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if entryName == "." || entryName == ".." { continue }
            var info = stat()
            guard fstatat(descriptor, entryName, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }  // gone meanwhile
            entries.append(Entry(name: entryName, type: info.st_mode & S_IFMT))
        }
        return entries.sorted { $0.name < $1.name }
    }
}
