import Foundation
import Synchronization

/// A toolchain found on the host's PATH: the install prefix to bind read-only, the folders to
/// put on the jail's PATH and the variables it needs to find itself.
public struct Toolchain: Sendable, Hashable {
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
        let homes = homeDirectories()
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

    /// The harness user's home, root's and every directory in /home.
    static func homeDirectories() -> [String] {
        var homes = ["/root"]
        if let home = ProcessInfo.processInfo.environment["HOME"], home.hasPrefix("/"), home != "/" { homes.append(home) }
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

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
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
