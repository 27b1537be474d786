import Foundation
import WardenCore

/// A jail profile: what the jail mounts, which limits apply, whether it has a network and
/// which system calls it refuses. Profiles are JSON files in `Sandboxes/`.
public struct SandboxProfile: Sendable, Hashable {
    public enum Network: String, Sendable, Hashable {
        /// A network namespace of its own with only a loopback interface.
        case none
        /// The host's network (for environment set-up that downloads packages).
        case host
    }

    /// What the jail's root is.
    public enum RootFilesystem: String, Sendable, Hashable {
        /// A tmpfs with the host's system directories bound read-only (`system_mounts`).
        case host
        /// The task's container image with a writable layer of the jail's own; the task must
        /// name an image.
        case image
    }

    /// How an image jail writes outside the checkout, /tmp and its home.
    public enum ImageRoot: String, Sendable, Hashable {
        /// An overlayfs over the shared image with a writable layer of the jail's own.
        case overlay
        /// The fallback where overlayfs cannot be mounted: the image's top-level directories
        /// bound read-only on a tmpfs root (installing packages outside /tmp and HOME fails).
        case readOnly = "read-only"
    }

    public struct Mount: Sendable, Hashable {
        public var source: String
        public var target: String
        public var writable: Bool
        /// A missing optional source is skipped instead of failing the jail.
        public var optional: Bool

        public init(source: String, target: String? = nil, writable: Bool = false, optional: Bool = false) {
            self.source = source
            self.target = target ?? source
            self.writable = writable
            self.optional = optional
        }
    }

    public struct Tmpfs: Sendable, Hashable {
        public var target: String
        public var sizeMB: Int

        public init(target: String, sizeMB: Int) {
            self.target = target
            self.sizeMB = sizeMB
        }
    }

    public struct Limits: Sendable, Hashable {
        /// CPU seconds per process (SIGXCPU at the limit, SIGKILL a second later).
        public var cpuSeconds: Int
        /// Memory of the whole jail, every process and its tmpfs files together, without swap
        /// (a memory cgroup); per-process address space only where no memory cgroup exists.
        public var memoryMB: Int
        /// Largest file a process may write.
        public var fileSizeMB: Int
        public var openFiles: Int
        /// Processes alive in the jail at once.
        public var processes: Int
        /// Default wall-clock timeout of one command.
        public var commandTimeoutSeconds: Double

        public init(cpuSeconds: Int = 600, memoryMB: Int = 4096, fileSizeMB: Int = 1024, openFiles: Int = 1024,
                    processes: Int = 512, commandTimeoutSeconds: Double = 120) {
            self.cpuSeconds = cpuSeconds
            self.memoryMB = memoryMB
            self.fileSizeMB = fileSizeMB
            self.openFiles = openFiles
            self.processes = processes
            self.commandTimeoutSeconds = commandTimeoutSeconds
        }
    }

    public struct Output: Sendable, Hashable {
        /// Bytes kept from the start of each stream.
        public var headBytes: Int
        /// Bytes kept from the end of each stream.
        public var tailBytes: Int

        public init(headBytes: Int = 256 * 1024, tailBytes: Int = 256 * 1024) {
            self.headBytes = headBytes
            self.tailBytes = tailBytes
        }
    }

    public struct Syscalls: Sendable, Hashable {
        /// Syscalls refused with an errno, keyed by errno name (EPERM, ENOSYS, ...).
        public var errno: [String: [String]]
        /// Refuse clone/unshare-style creation of namespaces (any CLONE_NEW* flag).
        public var denyNamespaceClone: Bool
        /// ioctl requests refused with EPERM, by name (TIOCSTI, TIOCLINUX).
        public var denyIoctls: [String]

        public init(errno: [String: [String]] = [:], denyNamespaceClone: Bool = true, denyIoctls: [String] = []) {
            self.errno = errno
            self.denyNamespaceClone = denyNamespaceClone
            self.denyIoctls = denyIoctls
        }
    }

    public var name: String
    public var description: String
    public var network: Network
    public var rootfs: RootFilesystem
    public var imageRoot: ImageRoot
    /// Host paths bound read-only at the same place (symlinks are recreated, not followed).
    public var systemMounts: [String]
    /// Tools whose install prefixes are found on the host's PATH and bound read-only.
    public var toolchains: [String]
    public var extraMounts: [Mount]
    public var tmpfs: [Tmpfs]
    /// Paths hidden inside the jail: files read as empty, directories as empty and read-only.
    public var masks: [String]
    public var checkoutWritable: Bool
    /// Re-bind the checkout's `.git` read-only (the agent can then not commit).
    public var gitDirectoryReadOnly: Bool
    public var home: String
    public var environment: [String: String]
    public var limits: Limits
    public var output: Output
    public var syscalls: Syscalls

    public init(
        name: String, description: String = "", network: Network = .none, rootfs: RootFilesystem = .host,
        imageRoot: ImageRoot = .overlay, systemMounts: [String] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"],
        toolchains: [String] = [], extraMounts: [Mount] = [], tmpfs: [Tmpfs] = [Tmpfs(target: "/tmp", sizeMB: 1024)],
        masks: [String] = [], checkoutWritable: Bool = true, gitDirectoryReadOnly: Bool = false,
        home: String = "/tmp", environment: [String: String] = [:], limits: Limits = Limits(),
        output: Output = Output(), syscalls: Syscalls = Syscalls()
    ) {
        self.name = name
        self.description = description
        self.network = network
        self.rootfs = rootfs
        self.imageRoot = imageRoot
        self.systemMounts = systemMounts
        self.toolchains = toolchains
        self.extraMounts = extraMounts
        self.tmpfs = tmpfs
        self.masks = masks
        self.checkoutWritable = checkoutWritable
        self.gitDirectoryReadOnly = gitDirectoryReadOnly
        self.home = home
        self.environment = environment
        self.limits = limits
        self.output = output
        self.syscalls = syscalls
    }
}

// MARK: - Loading

extension SandboxProfile {
    /// The profile for a jail in a container image: this one when its root already is the
    /// image, else `<name>-image` (agent -> agent-image, tests -> tests-image), with no more
    /// memory than this one (`warden run` fits its profiles' memory to its workers).
    public func forImage() throws -> SandboxProfile {
        guard rootfs == .host else { return self }
        var variant = try SandboxProfile.load(name + "-image")
        variant.limits.memoryMB = min(variant.limits.memoryMB, limits.memoryMB)
        return variant
    }

    /// Finds a profile by name or path: a path to a `.json` file, or a name looked up in
    /// `$WARDEN_SANDBOXES`, `./Sandboxes`, and the `Sandboxes` folder above the executable.
    public static func load(_ nameOrPath: String) throws -> SandboxProfile {
        let url = try locate(nameOrPath)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw WardenError("profile.read", "cannot read the profile: \(error.localizedDescription)", context: url.path)
        }
        return try parse(data, file: url.path, name: url.deletingPathExtension().lastPathComponent)
    }

    /// The profile's file: a path as given, else `NAME.json` in the first folder holding it,
    /// most specific first (WARDEN_SANDBOXES, ./Sandboxes, then up from the executable). The
    /// folders are made as they are reached: the walk up from the executable cost 0.3 ms of
    /// every start, and the profile is usually found before it.
    static func locate(_ nameOrPath: String) throws -> URL {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".json") {
            return URL(fileURLWithPath: nameOrPath)
        }
        var looked: [String] = []
        func holding(_ directory: URL) -> URL? {
            let candidate = directory.appendingPathComponent(nameOrPath + ".json")
            looked.append(candidate.path)
            return FileManager.default.fileExists(atPath: candidate.path) ? candidate : nil
        }
        if let fromEnvironment = getenv("WARDEN_SANDBOXES"), let found = holding(URL(fileURLWithPath: String(cString: fromEnvironment))) {
            return found
        }
        if let found = holding(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Sandboxes")) {
            return found
        }
        // Walk up from the executable: .build/debug/warden finds the checkout's Sandboxes/.
        var directory = URL(fileURLWithPath: CommandLine.arguments.first.map(resolveExecutable) ?? "/").deletingLastPathComponent()
        for _ in 0..<5 {
            if let found = holding(directory.appendingPathComponent("Sandboxes")) { return found }
            directory.deleteLastPathComponent()
        }
        throw WardenError(
            "profile.missing",
            "no sandbox profile named '\(nameOrPath)'; looked in \(looked.joined(separator: ", ")). "
                + "Pass a path to a .json profile or set WARDEN_SANDBOXES to the folder holding them")
    }

    private static func resolveExecutable(_ argument: String) -> String {
        if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return link }
        return argument
    }

    /// Parses a profile, naming the file and the field in every error. Unknown fields are
    /// errors: a typo in a security setting must not be silently ignored.
    public static func parse(_ data: Data, file: String, name: String) throws -> SandboxProfile {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw WardenError("profile.invalid", "not valid JSON: \(error.localizedDescription)", context: file)
        }
        let reader = FieldReader(file: file)
        let object = try reader.object(root, at: "")
        try reader.rejectUnknown(object, at: "", allowed: [
            "description", "network", "rootfs", "image_root", "system_mounts", "toolchains", "extra_mounts", "tmpfs", "masks", "checkout",
            "home", "environment", "limits", "output", "syscalls",
        ])
        var profile = SandboxProfile(name: name)
        profile.description = try reader.optional(object, "description", at: "", reader.string) ?? ""
        if let network = try reader.optional(object, "network", at: "", reader.string) {
            guard let value = Network(rawValue: network) else {
                throw reader.error("network", "must be \"none\" or \"host\", not \"\(network)\"")
            }
            profile.network = value
        }
        if let rootfs = try reader.optional(object, "rootfs", at: "", reader.string) {
            guard let value = RootFilesystem(rawValue: rootfs) else {
                throw reader.error("rootfs", "must be \"host\" or \"image\", not \"\(rootfs)\"")
            }
            profile.rootfs = value
        }
        if let imageRoot = try reader.optional(object, "image_root", at: "", reader.string) {
            guard let value = ImageRoot(rawValue: imageRoot) else {
                throw reader.error("image_root", "must be \"overlay\" or \"read-only\", not \"\(imageRoot)\"")
            }
            profile.imageRoot = value
        }
        profile.systemMounts = try reader.optional(object, "system_mounts", at: "", reader.absolutePaths) ?? profile.systemMounts
        profile.toolchains = try reader.optional(object, "toolchains", at: "", reader.strings) ?? []
        if let mounts = try reader.optional(object, "extra_mounts", at: "", reader.array) {
            profile.extraMounts = try mounts.enumerated().map { index, item in
                let path = "extra_mounts[\(index)]"
                let mount = try reader.object(item, at: path)
                try reader.rejectUnknown(mount, at: path, allowed: ["source", "target", "mode", "optional"])
                let source = try reader.absolutePath(try reader.required(mount, "source", at: path), at: path + ".source")
                let target = try reader.optional(mount, "target", at: path, reader.absolutePath) ?? source
                let mode = try reader.optional(mount, "mode", at: path, reader.string) ?? "ro"
                guard mode == "ro" || mode == "rw" else { throw reader.error(path + ".mode", "must be \"ro\" or \"rw\"") }
                let optional = try reader.optional(mount, "optional", at: path, reader.bool) ?? false
                return Mount(source: source, target: target, writable: mode == "rw", optional: optional)
            }
        }
        if let mounts = try reader.optional(object, "tmpfs", at: "", reader.array) {
            profile.tmpfs = try mounts.enumerated().map { index, item in
                let path = "tmpfs[\(index)]"
                let mount = try reader.object(item, at: path)
                try reader.rejectUnknown(mount, at: path, allowed: ["target", "size_mb"])
                let target = try reader.absolutePath(try reader.required(mount, "target", at: path), at: path + ".target")
                let size = try reader.optional(mount, "size_mb", at: path, reader.positiveInt) ?? 512
                return Tmpfs(target: target, sizeMB: size)
            }
        }
        profile.masks = try reader.optional(object, "masks", at: "", reader.absolutePaths) ?? []
        if let checkout = try reader.optional(object, "checkout", at: "", reader.object) {
            try reader.rejectUnknown(checkout, at: "checkout", allowed: ["mode", "git_dir"])
            let mode = try reader.optional(checkout, "mode", at: "checkout", reader.string) ?? "rw"
            let gitDirectory = try reader.optional(checkout, "git_dir", at: "checkout", reader.string) ?? "rw"
            guard mode == "ro" || mode == "rw" else { throw reader.error("checkout.mode", "must be \"ro\" or \"rw\"") }
            guard gitDirectory == "ro" || gitDirectory == "rw" else {
                throw reader.error("checkout.git_dir", "must be \"ro\" or \"rw\"")
            }
            profile.checkoutWritable = mode == "rw"
            profile.gitDirectoryReadOnly = gitDirectory == "ro"
        }
        profile.home = try reader.optional(object, "home", at: "", reader.absolutePath) ?? profile.home
        if let environment = try reader.optional(object, "environment", at: "", reader.object) {
            profile.environment = try environment.reduce(into: [:]) { result, entry in
                result[entry.key] = try reader.string(entry.value, at: "environment." + entry.key)
            }
        }
        if let limits = try reader.optional(object, "limits", at: "", reader.object) {
            try reader.rejectUnknown(limits, at: "limits", allowed: [
                "cpu_seconds", "memory_mb", "file_size_mb", "open_files", "processes", "command_timeout_seconds",
            ])
            var value = Limits()
            value.cpuSeconds = try reader.optional(limits, "cpu_seconds", at: "limits", reader.positiveInt) ?? value.cpuSeconds
            value.memoryMB = try reader.optional(limits, "memory_mb", at: "limits", reader.positiveInt) ?? value.memoryMB
            value.fileSizeMB = try reader.optional(limits, "file_size_mb", at: "limits", reader.positiveInt) ?? value.fileSizeMB
            value.openFiles = try reader.optional(limits, "open_files", at: "limits", reader.positiveInt) ?? value.openFiles
            value.processes = try reader.optional(limits, "processes", at: "limits", reader.positiveInt) ?? value.processes
            value.commandTimeoutSeconds = try reader.optional(limits, "command_timeout_seconds", at: "limits", reader.positiveDouble)
                ?? value.commandTimeoutSeconds
            profile.limits = value
        }
        if let output = try reader.optional(object, "output", at: "", reader.object) {
            try reader.rejectUnknown(output, at: "output", allowed: ["head_bytes", "tail_bytes"])
            profile.output.headBytes = try reader.optional(output, "head_bytes", at: "output", reader.positiveInt) ?? profile.output.headBytes
            profile.output.tailBytes = try reader.optional(output, "tail_bytes", at: "output", reader.positiveInt) ?? profile.output.tailBytes
        }
        if let syscalls = try reader.optional(object, "syscalls", at: "", reader.object) {
            try reader.rejectUnknown(syscalls, at: "syscalls", allowed: ["errno", "deny_namespace_clone", "deny_ioctls"])
            var value = Syscalls()
            if let errno = try reader.optional(syscalls, "errno", at: "syscalls", reader.object) {
                value.errno = try errno.reduce(into: [:]) { result, entry in
                    result[entry.key] = try reader.strings(entry.value, at: "syscalls.errno." + entry.key)
                }
            }
            value.denyNamespaceClone = try reader.optional(syscalls, "deny_namespace_clone", at: "syscalls", reader.bool) ?? true
            value.denyIoctls = try reader.optional(syscalls, "deny_ioctls", at: "syscalls", reader.strings) ?? []
            profile.syscalls = value
        }
        // Names of syscalls, errnos and ioctls are checked against libseccomp here, so a typo
        // is reported with its field rather than when the first jail starts.
        _ = try SeccompPolicy(profile.syscalls, file: file).compile()
        return profile
    }
}

/// Reads JSON values and reports mistakes as `file: field: problem`.
struct FieldReader {
    let file: String

    func error(_ field: String, _ message: String) -> WardenError {
        WardenError("profile.invalid", message, context: "\(file): \(field)")
    }

    private func join(_ parent: String, _ key: String) -> String { parent.isEmpty ? key : parent + "." + key }

    func object(_ value: JSONValue, at path: String) throws -> [String: JSONValue] {
        guard case let .object(object) = value else { throw error(path.isEmpty ? "(top level)" : path, "must be an object") }
        return object
    }

    func array(_ value: JSONValue, at path: String) throws -> [JSONValue] {
        guard case let .array(array) = value else { throw error(path, "must be a list") }
        return array
    }

    func string(_ value: JSONValue, at path: String) throws -> String {
        guard case let .string(string) = value else { throw error(path, "must be a string") }
        return string
    }

    func strings(_ value: JSONValue, at path: String) throws -> [String] {
        try array(value, at: path).enumerated().map { try string($1, at: "\(path)[\($0)]") }
    }

    func absolutePath(_ value: JSONValue, at path: String) throws -> String {
        let text = try string(value, at: path)
        guard text.hasPrefix("/"), !text.split(separator: "/").contains("..") else {
            throw error(path, "must be an absolute path without '..', not \"\(text)\"")
        }
        return text
    }

    func absolutePaths(_ value: JSONValue, at path: String) throws -> [String] {
        try array(value, at: path).enumerated().map { try absolutePath($1, at: "\(path)[\($0)]") }
    }

    func bool(_ value: JSONValue, at path: String) throws -> Bool {
        guard case let .bool(bool) = value else { throw error(path, "must be true or false") }
        return bool
    }

    func positiveInt(_ value: JSONValue, at path: String) throws -> Int {
        guard case let .number(number) = value, number == number.rounded(), number > 0, number < 1e15 else {
            throw error(path, "must be a positive whole number")
        }
        return Int(number)
    }

    func positiveDouble(_ value: JSONValue, at path: String) throws -> Double {
        guard case let .number(number) = value, number > 0 else { throw error(path, "must be a positive number") }
        return number
    }

    func required(_ object: [String: JSONValue], _ key: String, at path: String) throws -> JSONValue {
        guard let value = object[key] else { throw error(join(path, key), "is required") }
        return value
    }

    func optional<T>(_ object: [String: JSONValue], _ key: String, at path: String,
                     _ read: (JSONValue, String) throws -> T) throws -> T? {
        guard let value = object[key], value != .null else { return nil }
        return try read(value, join(path, key))
    }

    func rejectUnknown(_ object: [String: JSONValue], at path: String, allowed: Set<String>) throws {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw error(join(path, unknown), "unknown field; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }
}
