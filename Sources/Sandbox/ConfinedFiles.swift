import CJail
import Foundation
import WardenCore

/// Reads and writes files of a checkout for the agent's `edit`, `create` and `submit PATH`
/// tools, with the same confinement as the jail: no path, `..` or symlink can lead outside the
/// checkout (openat2 with RESOLVE_BENEATH), and new directories are created one component at a
/// time beneath descriptors that were themselves opened beneath the checkout.
public struct ConfinedFiles: Sendable {
    /// The checkout's real path.
    public let root: String

    public init(root: String) {
        self.root = root
    }

    /// The path relative to the checkout: relative paths are taken from `cwd` (the shell's
    /// working directory), absolute ones must lie inside the checkout.
    public func relativePath(_ path: String, cwd: String) throws -> String {
        guard !path.isEmpty else { throw WardenError("files.path", "the path is empty") }
        let absolute = path.hasPrefix("/") ? path : cwd + "/" + path
        var components: [Substring] = []
        for component in absolute.split(separator: "/") {
            if component == "." { continue }
            if component == ".." {
                if components.isEmpty { throw outside(path) }
                components.removeLast()
            } else {
                components.append(component)
            }
        }
        let rootComponents = root.split(separator: "/")
        guard components.count > rootComponents.count, Array(components.prefix(rootComponents.count)) == rootComponents else {
            throw outside(path)
        }
        return components.dropFirst(rootComponents.count).joined(separator: "/")
    }

    private func outside(_ path: String) -> WardenError {
        WardenError("files.outside", "\(path) is outside the checkout \(root); edit, create and submit work only on files inside it")
    }

    public func read(_ path: String, cwd: String) throws -> Data {
        let relative = try relativePath(path, cwd: cwd)
        let fd = try open(relative, flags: O_RDONLY, displayPath: path)
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw failure("read", path) }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Replaces an existing file's content (following links only while they stay inside).
    public func overwrite(_ path: String, cwd: String, with data: Data) throws {
        let relative = try relativePath(path, cwd: cwd)
        let fd = try open(relative, flags: O_WRONLY | O_TRUNC, displayPath: path)
        defer { close(fd) }
        try write(fd, data, path)
    }

    /// Creates a new file and any missing parent directories; fails if the file exists.
    public func create(_ path: String, cwd: String, with data: Data) throws {
        let relative = try relativePath(path, cwd: cwd)
        var components = relative.split(separator: "/").map(String.init)
        let name = components.removeLast()
        var directory = Glibc.open(root, O_DIRECTORY | cjail_O_PATH | O_CLOEXEC)
        guard directory >= 0 else { throw failure("open the checkout", root) }
        defer { close(directory) }
        for component in components {
            if mkdirat(directory, component, 0o755) < 0 && errno != EEXIST { throw failure("create the directory", component) }
            let next = cjail_open_beneath(directory, component, O_DIRECTORY | cjail_O_PATH, 0)
            guard next >= 0 else { throw failure("enter the directory", component) }
            close(directory)
            directory = next
        }
        let fd = cjail_open_beneath(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            if errno == EEXIST { throw WardenError("files.exists", "\(path) already exists; use edit to change it") }
            throw failure("create", path)
        }
        defer { close(fd) }
        try write(fd, data, path)
    }

    private func open(_ relative: String, flags: Int32, displayPath: String) throws -> Int32 {
        let rootDescriptor = Glibc.open(root, O_DIRECTORY | cjail_O_PATH | O_CLOEXEC)
        guard rootDescriptor >= 0 else { throw failure("open the checkout", root) }
        defer { close(rootDescriptor) }
        let fd = cjail_open_beneath(rootDescriptor, relative, flags, 0)
        guard fd >= 0 else {
            if errno == ENOENT { throw WardenError("files.missing", "\(displayPath) does not exist") }
            if errno == EXDEV { throw outside(displayPath) }
            throw failure("open", displayPath)
        }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG {
            close(fd)
            throw WardenError("files.type", "\(displayPath) is not a regular file")
        }
        return fd
    }

    private func write(_ fd: Int32, _ data: Data, _ path: String) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let count = Glibc.write(fd, base + offset, bytes.count - offset)
                if count < 0 && errno == EINTR { continue }
                if count < 0 { throw failure("write", path) }
                offset += count
            }
        }
    }

    private func failure(_ what: String, _ path: String) -> WardenError {
        if errno == EXDEV || errno == ELOOP { return outside(path) }
        return WardenError("files.io", "cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
}
