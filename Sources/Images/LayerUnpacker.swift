import CJail
import Foundation
import WardenCore

/// Applies image layers, in order, to one root directory: regular files, directories, symlinks,
/// hard links and FIFOs with their modes and modification times, and OCI whiteouts.
///
/// Nothing is ever written outside the root. Entry names that are absolute or contain `..`,
/// hard links naming such a target and symlinks whose relative target climbs above the root are
/// rejected (the whole layer fails). Parent directories are resolved with `openat2`'s
/// `RESOLVE_IN_ROOT`, so a symlink an earlier entry made (`etc -> /etc`, `x -> ../..`) is
/// followed as the jail will follow it, inside the root. Device nodes are skipped (the jail
/// gets its own /dev), and so are set-uid and set-gid bits (the image's files live on the host).
struct LayerUnpacker: ~Copyable {
    /// What one layer held that was not unpacked as is.
    struct Report: Sendable, Equatable {
        var entries = 0
        var skippedDevices = 0
        var skippedOther = 0
    }

    private let root: String
    private let rootDescriptor: Int32
    /// When set, every entry is given to these ids (a root harness gives the image to the
    /// jail's root); otherwise entries belong to whoever unpacks.
    private let owner: (uid: uid_t, gid: gid_t)?
    /// Paths this layer wrote: whiteouts and opaque directories hide lower layers only.
    private var writtenByLayer: Set<String> = []
    /// Directory modes, applied once every layer is in (a 0555 directory must still take files).
    private var directoryModes: [String: mode_t] = [:]

    init(root: String, owner: (uid: uid_t, gid: gid_t)?) throws {
        self.root = root
        self.owner = owner
        rootDescriptor = Glibc.open(root, cjail_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard rootDescriptor >= 0 else { throw WardenError("image.unpack", "cannot open the root: \(String(cString: strerror(errno)))", context: root) }
    }

    deinit { close(rootDescriptor) }

    /// Applies one layer (a tar stream, already decompressed).
    mutating func apply(_ source: any ByteSource, context: String) throws -> Report {
        let reader = TarReader(source, context: context)
        writtenByLayer = []
        var report = Report()
        while let entry = try reader.next() {
            report.entries += 1
            try apply(entry, reader: reader, context: context, report: &report)
        }
        return report
    }

    /// Sets the deferred directory modes, deepest first.
    mutating func finish() throws {
        for (path, mode) in directoryModes.sorted(by: { $0.key.count > $1.key.count }) {
            let (parent, name) = try open(parentOf: path, create: false, context: root)
            defer { close(parent) }
            if fchmodat(parent, name, mode, 0) < 0 { throw failure("cannot set the mode of", path, context: root) }
        }
        directoryModes = [:]
    }

    // MARK: - Entries

    private mutating func apply(_ entry: TarEntry, reader: TarReader, context: String, report: inout Report) throws {
        guard let path = try Self.normalize(entry.path, context: context) else { return }  // "." itself
        let name = (path as NSString).lastPathComponent
        if name.hasPrefix(".wh.") { return try whiteout(path, name: name, context: context) }
        let mode = mode_t(entry.mode) & 0o1777
        switch entry.kind {
        case .characterDevice, .blockDevice:
            report.skippedDevices += 1
            return
        case .other:
            report.skippedOther += 1
            return
        default: break
        }
        let (parent, leaf) = try open(parentOf: path, create: true, context: context)
        defer { close(parent) }
        try clear(parent, leaf, for: entry.kind, path: path, context: context)
        writtenByLayer.insert(path)
        switch entry.kind {
        case .directory:
            if mkdirat(parent, leaf, 0o700) < 0 && errno != EEXIST { throw failure("cannot create directory", path, context: context) }
            try chown(parent, leaf, path: path, context: context)
            directoryModes[path] = mode
        case .file:
            let file = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard file >= 0 else { throw failure("cannot create", path, context: context) }
            defer { close(file) }
            try copy(reader, to: file, path: path, context: context)
            if let owner, fchown(file, owner.uid, owner.gid) < 0 { throw failure("cannot set the owner of", path, context: context) }
            if fchmod(file, mode) < 0 { throw failure("cannot set the mode of", path, context: context) }
            var times = [timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0), timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0)]
            futimens(file, &times)
        case .symlink:
            try Self.checkSymlink(entry.linkTarget, at: path, context: context)
            if symlinkat(entry.linkTarget, parent, leaf) < 0 { throw failure("cannot create symlink", path, context: context) }
            try chown(parent, leaf, path: path, context: context)
            var times = [timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0), timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0)]
            utimensat(parent, leaf, &times, AT_SYMLINK_NOFOLLOW)
        case .hardLink:
            guard let target = try Self.normalize(entry.linkTarget, context: context) else {
                throw WardenError("image.unsafe", "hard link \(path) names the root as its target", context: context)
            }
            let (targetParent, targetLeaf) = try open(parentOf: target, create: false, context: context)
            defer { close(targetParent) }
            if linkat(targetParent, targetLeaf, parent, leaf, 0) < 0 { throw failure("cannot hard-link \(target) as", path, context: context) }
        case .fifo:
            if mkfifoat(parent, leaf, mode) < 0 { throw failure("cannot create FIFO", path, context: context) }
            try chown(parent, leaf, path: path, context: context)
        case .characterDevice, .blockDevice, .other:
            break
        }
    }

    /// `.wh.NAME` removes NAME of the lower layers; `.wh..wh..opq` empties its directory of them.
    private mutating func whiteout(_ path: String, name: String, context: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let parent: Int32
        do {
            parent = try openDirectory(directory, create: false, context: context)
        } catch let error as WardenError where error.code == "image.missing" {
            return  // nothing below to hide
        }
        defer { close(parent) }
        if name == ".wh..wh..opq" {
            for child in try Self.children(of: parent, path: directory, context: context)
            where !writtenByLayer.contains(directory.isEmpty ? child : directory + "/" + child) {
                try remove(parent, child, path: directory.isEmpty ? child : directory + "/" + child, context: context)
            }
            return
        }
        let hidden = String(name.dropFirst(4))
        let hiddenPath = directory.isEmpty ? hidden : directory + "/" + hidden
        guard !hidden.isEmpty, hidden != ".", hidden != "..", !writtenByLayer.contains(hiddenPath) else { return }
        var info = stat()
        if fstatat(parent, hidden, &info, AT_SYMLINK_NOFOLLOW) == 0 { try remove(parent, hidden, path: hiddenPath, context: context) }
    }

    /// Makes room for a new entry: whatever is there goes, except a directory replaced by a directory.
    private mutating func clear(_ parent: Int32, _ leaf: String, for kind: TarEntry.Kind, path: String, context: String) throws {
        var info = stat()
        guard fstatat(parent, leaf, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        if kind == .directory && info.st_mode & S_IFMT == S_IFDIR { return }
        try remove(parent, leaf, path: path, context: context)
    }

    /// Removes a tree and forgets the modes of the directories that were in it.
    private mutating func remove(_ parent: Int32, _ leaf: String, path: String, context: String) throws {
        try Self.removeTree(parent, leaf, path: path, context: context)
        if directoryModes.removeValue(forKey: path) != nil {
            directoryModes = directoryModes.filter { !$0.key.hasPrefix(path + "/") }
        }
    }

    private func copy(_ reader: TarReader, to file: Int32, path: String, context: String) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        try buffer.withUnsafeMutableBytes { buffer in
            while true {
                let got = try reader.readContent(into: buffer)
                if got == 0 { return }
                var written = 0
                while written < got {
                    let count = Glibc.write(file, buffer.baseAddress! + written, got - written)
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { throw failure("cannot write", path, context: context) }
                    written += count
                }
            }
        }
    }

    private func chown(_ parent: Int32, _ leaf: String, path: String, context: String) throws {
        guard let owner else { return }
        if fchownat(parent, leaf, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) < 0 { throw failure("cannot set the owner of", path, context: context) }
    }

    // MARK: - Paths

    /// The entry's path relative to the root without `.` components, nil for the root itself.
    /// Absolute paths and `..` components are refused.
    static func normalize(_ raw: String, context: String) throws -> String? {
        if raw.hasPrefix("/") {
            throw WardenError("image.unsafe", "the layer has an entry with an absolute path \"\(raw)\"; refusing to unpack it", context: context)
        }
        let components = raw.split(separator: "/").filter { $0 != "." }
        if components.contains("..") {
            throw WardenError("image.unsafe", "the layer has an entry \"\(raw)\" that climbs out with '..'; refusing to unpack it", context: context)
        }
        return components.isEmpty ? nil : components.joined(separator: "/")
    }

    /// A relative symlink target must stay inside the root from where the link is; an absolute
    /// one is read inside the root by the jail, as it is here.
    static func checkSymlink(_ target: String, at path: String, context: String) throws {
        guard !target.isEmpty else { throw WardenError("image.unsafe", "symlink \(path) has an empty target", context: context) }
        if target.hasPrefix("/") { return }
        var depth = path.split(separator: "/").count - 1
        for component in target.split(separator: "/") {
            if component == ".." { depth -= 1 } else if component != "." { depth += 1 }
            if depth < 0 {
                throw WardenError("image.unsafe", "symlink \(path) -> \(target) points out of the image; refusing to unpack it", context: context)
            }
        }
    }

    /// The directory holding `path` (made when `create`, as root-owned 0755 directories would
    /// be) and the last component.
    private func open(parentOf path: String, create: Bool, context: String) throws -> (Int32, String) {
        let directory = (path as NSString).deletingLastPathComponent
        return (try openDirectory(directory, create: create, context: context), (path as NSString).lastPathComponent)
    }

    private func openDirectory(_ directory: String, create: Bool, context: String) throws -> Int32 {
        let opened = cjail_open_in_root(rootDescriptor, directory.isEmpty ? "." : directory, cjail_O_PATH | O_DIRECTORY, 0)
        if opened >= 0 { return opened }
        guard errno == ENOENT else { throw failure("cannot open directory", directory, context: context) }
        guard create else { throw WardenError("image.missing", "no directory \(directory)", context: context) }
        let parent = try openDirectory((directory as NSString).deletingLastPathComponent, create: true, context: context)
        defer { close(parent) }
        let leaf = (directory as NSString).lastPathComponent
        if mkdirat(parent, leaf, 0o755) < 0 && errno != EEXIST { throw failure("cannot create directory", directory, context: context) }
        try chown(parent, leaf, path: directory, context: context)
        let made = cjail_open_in_root(rootDescriptor, directory, cjail_O_PATH | O_DIRECTORY, 0)
        guard made >= 0 else { throw failure("cannot open directory", directory, context: context) }
        return made
    }

    private func failure(_ what: String, _ path: String, context: String) -> WardenError {
        WardenError("image.unpack", "\(what) \(path): \(String(cString: strerror(errno)))", context: context)
    }

    // MARK: - Removal

    static func children(of directory: Int32, path: String, context: String) throws -> [String] {
        let readable = openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard readable >= 0, let stream = fdopendir(readable) else {
            throw WardenError("image.unpack", "cannot list \(path): \(String(cString: strerror(errno)))", context: context)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes `leaf` of `parent`, a directory with everything in it, never following a link.
    static func removeTree(_ parent: Int32, _ leaf: String, path: String, context: String) throws {
        if unlinkat(parent, leaf, 0) == 0 { return }
        guard errno == EISDIR || errno == EPERM else {
            throw WardenError("image.unpack", "cannot remove \(path): \(String(cString: strerror(errno)))", context: context)
        }
        let directory = openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { throw WardenError("image.unpack", "cannot open \(path): \(String(cString: strerror(errno)))", context: context) }
        // Unpacking as a user, a 0555 directory of a lower layer must become writable to empty it.
        fchmod(directory, 0o700)
        defer { close(directory) }
        for child in try children(of: directory, path: path, context: context) {
            try removeTree(directory, child, path: path + "/" + child, context: context)
        }
        if unlinkat(parent, leaf, AT_REMOVEDIR) < 0 {
            throw WardenError("image.unpack", "cannot remove \(path): \(String(cString: strerror(errno)))", context: context)
        }
    }
}
