import Foundation
import Synchronization
import WardenCore

/// Remembers, across processes, what a toolchain probe printed (`python3 -c "…sys.prefix"`,
/// `rustc --print sysroot`).
///
/// Through pyenv's shims one probe takes 100–250 ms, more than everything else `warden solve`
/// does before its first command. An answer is reused only while everything that could change
/// it is unchanged: the executable, the environment variables the version managers read, the
/// files that select a version (`~/.pyenv/version`, `.python-version` and `rust-toolchain`
/// files from the working directory up, rustup's settings), and every directory the answer
/// names. Anything else runs the probe again.
///
/// Each answer is a file of its own, named by a hash of its key, so a process reads only the
/// answers it asks for (decoding one shared JSON file of 30 answers took 1.3 ms of every start)
/// and processes storing different answers never overwrite each other's.
final class ToolchainProbeCache: Sendable {
    static let shared = ToolchainProbeCache(directory: WardenCache.root.appendingPathComponent("toolchain-probes"))

    /// One remembered answer, the state it was given in and when it was stored (seconds
    /// since 1970).
    struct Entry: Equatable {
        var key: String
        var output: String
        var witnesses: [String: String]
        var storedAt: Double

        static let header = "warden-toolchain-probe 1"

        /// Length-prefixed fields (`<bytes>:<text>` lines), so any text, newlines included,
        /// reads back exactly without a JSON decoder.
        var encoded: Data {
            var text = Self.header + "\n" + String(storedAt) + "\n" + String(witnesses.count) + "\n"
            for field in [key, output] + witnesses.sorted(by: { $0.key < $1.key }).flatMap({ [$0.key, $0.value] }) {
                text += String(field.utf8.count) + ":" + field + "\n"
            }
            return Data(text.utf8)
        }

        /// nil for anything but a complete entry in this format.
        init?(decoding data: Data) {
            var reader = FieldReader(bytes: [UInt8](data))
            guard reader.line() == Self.header, let storedAt = reader.line().flatMap(Double.init),
                let count = reader.line().flatMap(Int.init), count >= 0,
                let key = reader.field(), let output = reader.field()
            else { return nil }
            var witnesses: [String: String] = [:]
            for _ in 0..<count {
                guard let path = reader.field(), let signature = reader.field() else { return nil }
                witnesses[path] = signature
            }
            guard reader.atEnd else { return nil }
            self.init(key: key, output: output, witnesses: witnesses, storedAt: storedAt)
        }

        init(key: String, output: String, witnesses: [String: String], storedAt: Double = Date().timeIntervalSince1970) {
            (self.key, self.output, self.witnesses, self.storedAt) = (key, output, witnesses, storedAt)
        }
    }

    private struct FieldReader {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func line() -> String? {
            guard let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            defer { index = newline + 1 }
            return String(decoding: bytes[index..<newline], as: UTF8.self)
        }

        mutating func field() -> String? {
            guard let colon = bytes[index...].firstIndex(of: UInt8(ascii: ":")),
                let length = Int(String(decoding: bytes[index..<colon], as: UTF8.self)), length >= 0,
                colon + 1 + length < bytes.count, bytes[colon + 1 + length] == UInt8(ascii: "\n")
            else { return nil }
            index = colon + 2 + length
            return String(decoding: bytes[(colon + 1)..<(colon + 1 + length)], as: UTF8.self)
        }
    }

    /// The most answers the directory keeps: every working directory and environment adds one.
    static let entryLimit = 64

    private let directory: URL
    /// Answers already read or stored by this process, by key.
    private let entries = Mutex<[String: Entry]>([:])

    init(directory: URL) {
        self.directory = directory
    }

    /// The files that choose pyenv's Python version.
    static func pyenvSelectors() -> [String] {
        let root = environmentValue("PYENV_ROOT") ?? (environmentValue("HOME") ?? "/root") + "/.pyenv"
        return [root + "/version"] + ancestors(named: ".python-version")
    }

    /// The files that choose rustup's toolchain.
    static func rustupSelectors() -> [String] {
        let home = environmentValue("RUSTUP_HOME") ?? (environmentValue("HOME") ?? "/root") + "/.rustup"
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

    /// The process's values of `environmentNames`, the only ones a key reads.
    static func keyedEnvironment() -> [String: String] {
        var values: [String: String] = [:]
        for name in environmentNames { values[name] = environmentValue(name) }
        return values
    }

    /// The probe's output: remembered when nothing it depends on changed, else from `run`.
    func output(of executable: String, _ arguments: [String], selectedBy selectors: [String],
                environment: [String: String] = ToolchainProbeCache.keyedEnvironment(),
                run: (String, [String]) -> String?) -> String? {
        // The working directory and the variables are part of the key, not only witnesses:
        // version files are looked up from the directory, and two shells that alternate (one
        // with a virtualenv on PATH, one without) each keep their answer instead of evicting
        // the other's and paying for the probe every time.
        let variables = Self.environmentNames.map { "\($0)=\(environment[$0] ?? "-")" }
        let key = ([FileManager.default.currentDirectoryPath, executable] + arguments + variables).joined(separator: "\u{1F}")
        let inputs = Self.inputWitnesses(executable: executable, selectors: selectors)
        if let entry = entry(for: key), entry.witnesses == inputs.merging(Self.outputWitnesses(entry.output)) { $1 } {
            return entry.output
        }
        guard let output = run(executable, arguments) else { return nil }
        store(Entry(key: key, output: output, witnesses: inputs.merging(Self.outputWitnesses(output)) { $1 }))
        return output
    }

    private static func inputWitnesses(executable: String, selectors: [String]) -> [String: String] {
        var witnesses: [String: String] = [:]
        for path in [executable] + selectors { witnesses[path] = fileSignature(of: path) }
        return witnesses
    }

    /// Every absolute path the output names must still be the directory it was.
    private static func outputWitnesses(_ output: String) -> [String: String] {
        var witnesses: [String: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("/") { witnesses[String(line)] = fileSignature(of: String(line)) }
        return witnesses
    }


    /// The file of the answer for `key`.
    func file(for key: String) -> URL {
        directory.appendingPathComponent(String(fnv1a(key), radix: 16) + ".probe")
    }

    /// The answer for `key`: this process's, else its file's. A missing, damaged or colliding
    /// file is no answer (the probe runs, as without a cache).
    private func entry(for key: String) -> Entry? {
        if let known = entries.withLock({ $0[key] }) { return known }
        guard let data = FileManager.default.contents(atPath: file(for: key).path), let entry = Entry(decoding: data), entry.key == key else {
            return nil
        }
        entries.withLock { $0[key] = entry }
        return entry
    }

    private func store(_ entry: Entry) {
        entries.withLock { $0[entry.key] = entry }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try entry.encoded.write(to: file(for: entry.key), options: .atomic)
            try evictOldest()
        } catch {
            // Only a cache: the next process runs the probe again.
            FileHandle.standardError.write(Data("warden: warning: cannot save a toolchain probe in \(directory.path): \(error)\n".utf8))
        }
    }

    /// Past the limit the oldest answers go. Only a store pays for the listing, and stores
    /// are as rare as probes.
    private func evictOldest() throws {
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil).filter { $0.pathExtension == "probe" }
        guard files.count > Self.entryLimit else { return }
        // A file another process is replacing, or a damaged one, counts as the oldest.
        let dated = files.map { file in (file, FileManager.default.contents(atPath: file.path).flatMap(Entry.init(decoding:))?.storedAt ?? 0) }
        for (stale, _) in dated.sorted(by: { $0.1 < $1.1 }).prefix(files.count - Self.entryLimit) {
            do {
                try FileManager.default.removeItem(at: stale)
            } catch let error as CocoaError where error.code == .fileNoSuchFile {
                continue  // another process evicted it first
            }
        }
    }
}
