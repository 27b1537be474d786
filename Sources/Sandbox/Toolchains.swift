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
/// bind exactly those prefixes (pyenv lives in root's home, swift in /opt, rustup in ~/.rustup).
public enum ToolchainDetector {
    private static let cache = Mutex<[String: Toolchain?]>([:])

    /// Detects each named tool once per process; tools that are not installed are skipped.
    public static func detect(_ names: [String]) -> [Toolchain] {
        names.compactMap { name in
            if let known = cache.withLock({ $0[name] }) { return known }
            let found = find(name)
            cache.withLock { $0[name] = found }
            return found
        }
    }

    static func find(_ name: String) -> Toolchain? {
        guard let executable = which(name) else { return nil }
        let directory = (executable as NSString).deletingLastPathComponent
        switch name {
        case "python3", "python":
            // pyenv's shims are scripts that need pyenv itself: ask the interpreter where it lives.
            guard let output = run(executable, ["-c", "import sys; print(sys.base_prefix); print(sys.prefix)"]) else { return nil }
            let prefixes = Array(Set(output.split(separator: "\n").map(String.init))).sorted()
            return Toolchain(name: name, prefixes: prefixes.filter { !isSystemPath($0) },
                             pathEntries: prefixes.map { $0 + "/bin" }, environment: [:])
        case "cargo", "rustc", "rustup":
            // rustup proxies find their toolchains through RUSTUP_HOME.
            let cargoHome = (directory as NSString).deletingLastPathComponent
            var prefixes = [cargoHome]
            var environment: [String: String] = [:]
            let rustupHome = ProcessInfo.processInfo.environment["RUSTUP_HOME"]
                ?? ((cargoHome as NSString).deletingLastPathComponent + "/.rustup")
            if FileManager.default.fileExists(atPath: rustupHome) {
                prefixes.append(rustupHome)
                environment["RUSTUP_HOME"] = rustupHome
            }
            return Toolchain(name: name, prefixes: prefixes.filter { !isSystemPath($0) }, pathEntries: [directory],
                             environment: environment)
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

    private static func run(_ executable: String, _ arguments: [String]) -> String? {
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
