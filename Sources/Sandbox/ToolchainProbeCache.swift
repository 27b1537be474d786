import Foundation
import Synchronization

/// Remembers, across processes, what a toolchain probe printed (`python3 -c "…sys.prefix"`,
/// `rustc --print sysroot`).
///
/// Through pyenv's shims one probe takes 100–250 ms, more than everything else `warden solve`
/// does before its first command. An answer is reused only while everything that could change
/// it is unchanged: the executable, the environment variables the version managers read, the
/// files that select a version (`~/.pyenv/version`, `.python-version` and `rust-toolchain`
/// files from the working directory up, rustup's settings), and every directory the answer
/// names. Anything else runs the probe again.
final class ToolchainProbeCache: Sendable {
    static let shared = ToolchainProbeCache(file: WardenCache.root.appendingPathComponent("toolchain-probes.json"))

    /// One remembered answer, the state it was given in and when it was stored (seconds
    /// since 1970; 0 for entries written before the field existed).
    private struct Entry: Codable {
        var output: String
        var witnesses: [String: String]
        var storedAt: Double = 0

        init(output: String, witnesses: [String: String]) {
            (self.output, self.witnesses, storedAt) = (output, witnesses, Date().timeIntervalSince1970)
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            output = try container.decode(String.self, forKey: .output)
            witnesses = try container.decode([String: String].self, forKey: .witnesses)
            storedAt = try container.decodeIfPresent(Double.self, forKey: .storedAt) ?? 0
        }
    }

    /// The most answers the file keeps: every working directory and environment adds one, and
    /// the file is read by every jail-starting process.
    static let entryLimit = 64

    private let file: URL
    private let entries = Mutex<[String: Entry]?>(nil)

    init(file: URL) {
        self.file = file
    }

    /// The files that choose pyenv's Python version.
    static func pyenvSelectors() -> [String] {
        let environment = ProcessInfo.processInfo.environment
        let root = environment["PYENV_ROOT"] ?? (environment["HOME"] ?? "/root") + "/.pyenv"
        return [root + "/version"] + ancestors(named: ".python-version")
    }

    /// The files that choose rustup's toolchain.
    static func rustupSelectors() -> [String] {
        let environment = ProcessInfo.processInfo.environment
        let home = environment["RUSTUP_HOME"] ?? (environment["HOME"] ?? "/root") + "/.rustup"
        return [home + "/settings.toml"] + ancestors(named: "rust-toolchain") + ancestors(named: "rust-toolchain.toml")
    }

    private static func ancestors(named name: String) -> [String] {
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path
        var paths: [String] = []
        while true {
            paths.append((directory == "/" ? "" : directory) + "/" + name)
            if directory == "/" { return paths }
            directory = (directory as NSString).deletingLastPathComponent
        }
    }

    /// The variables the version managers read; an answer belongs to one set of their values.
    private static let environmentNames = ["PATH", "HOME", "PYENV_ROOT", "PYENV_VERSION", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "VIRTUAL_ENV"]

    /// The probe's output: remembered when nothing it depends on changed, else from `run`.
    func output(of executable: String, _ arguments: [String], selectedBy selectors: [String],
                environment: [String: String] = ProcessInfo.processInfo.environment,
                run: (String, [String]) -> String?) -> String? {
        // The working directory and the variables are part of the key, not only witnesses:
        // version files are looked up from the directory, and two shells that alternate (one
        // with a virtualenv on PATH, one without) each keep their answer instead of evicting
        // the other's and paying for the probe every time.
        let variables = Self.environmentNames.map { "\($0)=\(environment[$0] ?? "-")" }
        let key = ([FileManager.default.currentDirectoryPath, executable] + arguments + variables).joined(separator: "\u{1F}")
        let inputs = Self.inputWitnesses(executable: executable, selectors: selectors)
        if let entry = load()[key], entry.witnesses == inputs.merging(Self.outputWitnesses(entry.output)) { $1 } {
            return entry.output
        }
        guard let output = run(executable, arguments) else { return nil }
        store(key, Entry(output: output, witnesses: inputs.merging(Self.outputWitnesses(output)) { $1 }))
        return output
    }

    private static func inputWitnesses(executable: String, selectors: [String]) -> [String: String] {
        var witnesses: [String: String] = [:]
        for path in [executable] + selectors { witnesses[path] = signature(of: path) }
        return witnesses
    }

    /// Every absolute path the output names must still be the directory it was.
    private static func outputWitnesses(_ output: String) -> [String: String] {
        var witnesses: [String: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("/") { witnesses[String(line)] = signature(of: String(line)) }
        return witnesses
    }

    /// Inode, size and change time of `path` (without following a final symlink), or "absent".
    private static func signature(of path: String) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "absent" }
        return "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }

    private func load() -> [String: Entry] {
        entries.withLock { cached in
            if let cached { return cached }
            let loaded = readFile()
            cached = loaded
            return loaded
        }
    }

    /// The entries on disk; a missing or unreadable file is an empty cache (every probe runs, as without one).
    private func readFile() -> [String: Entry] {
        (try? Data(contentsOf: file)).flatMap { try? JSONDecoder().decode([String: Entry].self, from: $0) } ?? [:]
    }

    private func store(_ key: String, _ entry: Entry) {
        // Merged into what is on disk now: processes started from other directories add their
        // own entries meanwhile, and a plain rewrite would drop them.
        let snapshot = entries.withLock { cached -> [String: Entry] in
            var current = readFile().merging(cached ?? [:]) { disk, _ in disk }
            current[key] = entry
            // The oldest answers go first past the limit.
            for stale in current.sorted(by: { $0.value.storedAt < $1.value.storedAt }).prefix(max(0, current.count - Self.entryLimit)) {
                current[stale.key] = nil
            }
            cached = current
            return current
        }
        do {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONEncoder().encode(snapshot).write(to: file, options: .atomic)
        } catch {
            // Only a cache: the next process runs the probe again.
            FileHandle.standardError.write(Data("warden: warning: cannot save toolchain probes to \(file.path): \(error)\n".utf8))
        }
    }
}
