import Foundation
import Synchronization

/// A toolchain found on the host's PATH: the install prefix to bind read-only, the folders to
/// put on the jail's PATH and the variables it needs to find itself.
public struct Toolchain: Sendable, Hashable, Codable {
    public var name: String
    public var prefixes: [String]
    public var pathEntries: [String]
    public var environment: [String: String]
}

/// Finds where python3, node, cargo, swift and other tools are really installed, so a jail can
/// bind exactly those prefixes (pyenv lives in root's home, swift in /opt, rustup toolchains
/// in ~/.rustup/toolchains).
///
/// Only a toolchain's own install prefix is bound, never a place that holds secrets: not a
/// home directory, not a directory that contains one, and not a dot-directory directly in one
/// (`~/.cargo` holds `credentials.toml`, `~/.local` keyrings, `~/.config` tokens).
public enum ToolchainDetector {
    private static let cache = Mutex<[String: Toolchain?]>([:])

    /// Detects each named tool once per process; tools that are not installed are skipped.
    ///
    /// Detection holds the lock, so episodes starting together wait for one probe instead of
    /// each starting its own (16 concurrent pyenv probes cost seconds of CPU).
    public static func detect(_ names: [String]) -> [Toolchain] {
        cache.withLock { cache in
            names.compactMap { name in
                if let known = cache[name] { return known }
                let found = find(name).map(withoutSecretPrefixes)
                cache[name] = found
                return found
            }
        }
    }

    /// Drops prefixes that could expose secrets, saying so once (the detection is cached).
    static func withoutSecretPrefixes(_ toolchain: Toolchain) -> Toolchain {
        var safe = toolchain
        let homes = Self.homes
        safe.prefixes = toolchain.prefixes.filter { prefix in
            guard let reason = refusal(prefix, homes: homes) else { return true }
            FileHandle.standardError.write(Data("warden: warning: not binding \(prefix) for \(toolchain.name) into jails: \(reason)\n".utf8))
            return false
        }
        return safe
    }

    /// Why `prefix` must not be bound into a jail, or nil when it may.
    static func refusal(_ prefix: String, homes: [String]) -> String? {
        let path = prefix.count > 1 && prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        for home in homes {
            if path == home { return "it is a home directory" }
            if path == "/" || home.hasPrefix(path + "/") { return "it contains the home directory \(home)" }
            let parent = (path as NSString).deletingLastPathComponent
            if parent == home && (path as NSString).lastPathComponent.hasPrefix(".") {
                return "it is a configuration directory in \(home), where credentials live"
            }
        }
        return nil
    }

    /// The home directories, looked up once per process (the password database and /home
    /// took 0.4 ms, on every `warden solve`'s way to its first command).
    private static let homes: [String] = homeDirectories()

    /// The harness user's home, root's and every directory in /home.
    static func homeDirectories() -> [String] {
        var homes = ["/root"]
        if let home = environmentValue("HOME"), home.hasPrefix("/"), home != "/" { homes.append(home) }
        if let entry = getpwuid(geteuid()), let directory = entry.pointee.pw_dir {
            let home = String(cString: directory)
            if home.hasPrefix("/") && home != "/" { homes.append(home) }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/home")) ?? [] { homes.append("/home/" + name) }
        return Array(Set(homes.map { URL(fileURLWithPath: $0).standardizedFileURL.path })).sorted()
    }

    static func find(_ name: String) -> Toolchain? {
        guard let executable = which(name) else { return nil }
        let directory = (executable as NSString).deletingLastPathComponent
        switch name {
        case "python3", "python":
            // pyenv's shims are scripts that need pyenv itself: ask the interpreter where it lives.
            guard let output = ToolchainProbeCache.shared.output(of: executable, ["-c", "import sys; print(sys.base_prefix); print(sys.prefix)"],
                                                                 selectedBy: ToolchainProbeCache.pyenvSelectors(), run: run) else { return nil }
            let prefixes = Array(Set(output.split(separator: "\n").map(String.init))).sorted()
            return Toolchain(name: name, prefixes: prefixes.filter { !isSystemPath($0) },
                             pathEntries: prefixes.map { $0 + "/bin" }, environment: [:])
        case "cargo", "rustc", "rustup":
            // ~/.cargo/bin holds rustup proxies; the toolchain itself is the sysroot the proxy
            // picks (~/.rustup/toolchains/stable-...), whose bin/ has the real cargo and rustc.
            // Neither ~/.cargo (credentials.toml) nor the rest of ~/.rustup is bound.
            let rustc = (directory as NSString).appendingPathComponent("rustc")
            guard FileManager.default.isExecutableFile(atPath: rustc),
                  let sysroot = ToolchainProbeCache.shared.output(of: rustc, ["--print", "sysroot"], selectedBy: ToolchainProbeCache.rustupSelectors(), run: run),
                  sysroot.hasPrefix("/") else { return nil }
            return Toolchain(name: name, prefixes: isSystemPath(sysroot) ? [] : [sysroot], pathEntries: [sysroot + "/bin"],
                             environment: [:])
        default:
            let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: executable)).map {
                $0.hasPrefix("/") ? $0 : (directory as NSString).appendingPathComponent($0)
            } ?? executable
            let resolved = URL(fileURLWithPath: real).resolvingSymlinksInPath().path
            var prefix = ((resolved as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
            // /opt/swift/usr/bin/swift: the toolchain is /opt/swift, not /opt/swift/usr.
            if prefix.hasSuffix("/usr") && prefix != "/usr" { prefix = (prefix as NSString).deletingLastPathComponent }
            return Toolchain(name: name, prefixes: isSystemPath(prefix) ? [] : [prefix],
                             pathEntries: [directory, (resolved as NSString).deletingLastPathComponent], environment: [:])
        }
    }

    /// Paths every profile already binds.
    static func isSystemPath(_ path: String) -> Bool {
        ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"].contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    /// The first executable file called `name` on the PATH. System calls, not `ProcessInfo`'s
    /// environment dictionary and `FileManager`: five toolchains over a 12-entry PATH cost
    /// 0.9 ms of every start that way, on the path to the jail's configuration.
    static func which(_ name: String, searching path: String = environmentValue("PATH") ?? "/usr/local/bin:/usr/bin:/bin") -> String? {
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            var status = stat()
            if stat(candidate, &status) == 0, status.st_mode & S_IFMT != S_IFDIR, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    static func run(_ executable: String, _ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A host Python interpreter a task environment's venv is made with.
public struct PythonInterpreter: Sendable, Hashable, Codable {
    /// The real executable (`sys.executable`), never a version manager's shim: the venv links
    /// to it, and a shim needs its manager, which jails do not have.
    public var executable: String
    /// The full version, `3.11.7`.
    public var version: String
    /// The install prefix to bind read-only wherever the venv is used.
    public var toolchain: Toolchain
}

extension ToolchainDetector {
    /// The host's Python whose version is `version` (`3`, `3.11`, `3.11.7`): `python3.11` or
    /// `python3` on the PATH, else a pyenv version of that number (pyenv's shims only answer
    /// for the selected versions). Nil when the host has none.
    public static func python(_ version: String) -> PythonInterpreter? {
        let numbers = version.split(separator: ".")
        var candidates: [String] = []
        if numbers.count >= 2 { candidates += [which("python\(numbers[0]).\(numbers[1])")].compactMap { $0 } }
        candidates += [which("python\(numbers.first.map(String.init) ?? "3")"), which("python3")].compactMap { $0 }
        let pyenv = URL(fileURLWithPath: environmentValue("PYENV_ROOT") ?? (environmentValue("HOME") ?? "/root") + "/.pyenv").appendingPathComponent("versions")
        let installed = ((try? FileManager.default.contentsOfDirectory(atPath: pyenv.path)) ?? [])
            .filter { $0 == version || $0.hasPrefix(version + ".") }
            .sorted { $0.compare($1, options: .numeric) == .orderedDescending }
        candidates += installed.map { pyenv.appendingPathComponent("\($0)/bin/python3").path }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            let probe = "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3]); print(sys.base_prefix)"
            guard let output = ToolchainProbeCache.shared.output(of: candidate, ["-c", probe], selectedBy: ToolchainProbeCache.pyenvSelectors(), run: run)
            else { continue }
            let lines = output.split(separator: "\n").map(String.init)
            guard lines.count == 3, lines[0].hasPrefix("/"), lines[1] == version || lines[1].hasPrefix(version + ".") else { continue }
            let toolchain = withoutSecretPrefixes(Toolchain(name: "python\(lines[1])", prefixes: isSystemPath(lines[2]) ? [] : [lines[2]],
                                                            pathEntries: [], environment: [:]))
            return PythonInterpreter(executable: lines[0], version: lines[1], toolchain: toolchain)
        }
        return nil
    }
}

/// One variable of the process's environment (`ProcessInfo.environment` copies them all).
func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
