import Foundation
import Scoring
import Tasks
import WardenCore
import Workspace

/// The repository `warden synth` mutates, at a state whose tests pass, committed once with a
/// fixed author and date, and how its tests run.
public struct SynthSource: Sendable {
    /// OWNER/NAME: the suite task's `repo`, or `local/DIRECTORY` for a plain repository.
    public var name: String
    /// A folder with the files (and a one-commit repository in `.git`).
    public var checkout: URL
    public var commit: String
    /// The test command; `{test_files}` becomes every test file of the repository.
    public var testCommand: String
    public var logParser: LogParser
    /// Every file of the commit, relative to the checkout.
    public var files: [String]

    /// Prepares `reference`: a suite task directory (its repository with the gold and test
    /// patches applied) or a repository directory (its HEAD when it is a git repository, its
    /// files otherwise). The result lives in `work`.
    public static func prepare(_ reference: String, work: URL, testCommand: String? = nil, logParser: LogParser? = nil) throws -> SynthSource {
        let url = URL(fileURLWithPath: reference).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WardenError("synth.source", "no repository or suite task directory at \(reference)")
        }
        let checkout = work.appendingPathComponent("source")
        try FileManager.default.removeItem(at: checkout, ifPresent: true)
        var name = "local/" + url.lastPathComponent
        var command = testCommand
        var parser = logParser
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("task.json").path) {
            let task = try TaskSuite.task(at: .taskDirectory(path: url.path), cache: work.appendingPathComponent("cache"))
            guard let base = task.instance.baseCommit else { throw WardenError("synth.source", "the task has no base commit", context: url.path) }
            try WorkspaceTracker.materialize(source: task.repository, commit: base, into: checkout)
            let state = work.appendingPathComponent("tracker")
            try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
            let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: state, tracking: .scanned)
            for (label, patch) in [("gold patch", task.instance.goldPatch), ("test patch", task.instance.testPatch)] {
                guard let patch, !patch.isEmpty else { continue }
                do { try tracker.apply(patch: patch) } catch {
                    throw WardenError("synth.source", "the task's \(label) does not apply to its repository: \(error)", context: url.path)
                }
            }
            name = task.instance.repo ?? task.instance.instanceID
            command = command ?? task.instance.testCommand
            parser = parser ?? task.instance.logParser
        } else if FileManager.default.fileExists(atPath: url.appendingPathComponent(".git").path) {
            try WorkspaceTracker.materialize(source: url, commit: "HEAD", into: checkout)
        } else {
            do { try FileManager.default.copyItem(at: url, to: checkout) } catch {
                throw WardenError("synth.source", "cannot copy the repository: \(error.localizedDescription)", context: url.path)
            }
        }
        // One commit of the passing state, the same on every machine.
        try FileManager.default.removeItem(at: checkout.appendingPathComponent(".git"), ifPresent: true)
        let commit = try RepositoryBuilder.commitAll(in: checkout, message: "\(name): passing state for warden synth")
        let files = try listFiles(checkout)
        if command == nil || parser == nil {
            guard let detected = detectRunner(files) else {
                throw WardenError("synth.source", "cannot tell how this repository's tests run (no Python tests, package.json or Cargo.toml): pass --test-cmd and --log-parser",
                                  context: url.path)
            }
            command = command ?? detected.command
            parser = parser ?? detected.parser
        }
        return SynthSource(name: name, checkout: checkout, commit: commit, testCommand: command ?? "", logParser: parser ?? .pytest, files: files)
    }

    /// The files a test runner runs: test-named files of the languages Warden mutates and
    /// script files under test directories.
    public var testFiles: [String] {
        files.filter(Self.isTestFile)
    }

    static func isTestFile(_ path: String) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        guard let name = components.last else { return false }
        if name.hasSuffix(".py") {
            return (name.hasPrefix("test_") || name.hasSuffix("_test.py")) && name != "test_.py"
        }
        let scripts = [".js", ".mjs", ".cjs"]
        guard scripts.contains(where: { name.hasSuffix($0) }) else { return false }
        let testDirectories: Set<String> = ["test", "tests", "__tests__"]
        return components.dropLast().contains(where: testDirectories.contains) || name.contains(".test.") || name.contains(".spec.")
    }

    /// The test command with `{test_files}` spelled out (every test file, quoted).
    public func command(testFiles: [String]? = nil) -> String {
        let quoted = (testFiles ?? self.testFiles).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return testCommand.replacingOccurrences(of: "{test_files}", with: quoted)
    }

    /// Source files (not tests, not test infrastructure) that `mutator` edits.
    public func sourceFiles(for mutator: any Mutator) -> [String] {
        let topLevel = Set(files.map { String($0.split(separator: "/").first ?? "") })
        return files.filter { mutator.handles($0) && !Self.isTestFile($0) && !TestInfrastructure.isInfrastructure($0, baseTopLevel: topLevel) }
    }

    static func detectRunner(_ files: [String]) -> (command: String, parser: LogParser)? {
        if files.contains("Cargo.toml") { return ("cargo test --offline -- --test-threads=1", .cargo) }
        if files.contains("package.json") { return ("node --test {test_files}", .node) }
        if files.contains(where: { isTestFile($0) && $0.hasSuffix(".py") }) {
            return ("python3 -m pytest -o pythonpath=. -rA --color=no -p no:cacheprovider --tb=no {test_files}", .pytest)
        }
        return nil
    }

    static func listFiles(_ root: URL) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root.path) else {
            throw WardenError("synth.source", "cannot list the repository's files", context: root.path)
        }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            if relative == ".git" || relative.hasPrefix(".git/") || relative.hasSuffix("__pycache__") || relative == "node_modules" || relative == "target" {
                walker.skipDescendants()
                continue
            }
            if walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular { files.append(relative) }
        }
        return files.sorted()
    }
}

extension FileManager {
    /// Removes `url`; a missing file is not an error.
    func removeItem(at url: URL, ifPresent: Bool) throws {
        guard fileExists(atPath: url.path) else { return }
        try removeItem(at: url)
    }
}
