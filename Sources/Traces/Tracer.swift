import Foundation
import Sandbox
import WardenCore
import Workspace

/// One frame of a trace, as the tracer writes it: full locals (reprs) on every frame; CWM's
/// `..` abbreviation is only in the text rendering.
public struct TraceFrame: Codable, Sendable, Hashable {
    public var kind: String
    public var file: String
    public var line: Int
    public var function: String
    public var source: String
    public var locals: [String: String]
    public var value: String?
}

/// The caps a trace ran under (`warden_trace.py --max-*`).
public struct TraceLimits: Codable, Sendable, Hashable {
    public var maxFrames = 10_000
    public var maxRepr = 200
    public var maxBytes = 4 << 20
    public var maxSeconds = 20.0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case maxFrames = "max_frames", maxRepr = "max_repr", maxBytes = "max_bytes", maxSeconds = "max_seconds"
    }

    var arguments: String {
        "--max-frames \(maxFrames) --max-repr \(maxRepr) --max-bytes \(maxBytes) --max-seconds \(maxSeconds)"
    }
}

/// One row of `traces.jsonl`: one traced entry call (a function or a test) and its outcome.
public struct TraceRow: Codable, Sendable, Hashable {
    public var instanceID: String?
    public var testID: String?
    public var entry: String
    public var frames: [TraceFrame]
    public var truncated: Bool
    /// The caps that fired: `frames`, `repr`, `bytes`, `seconds`.
    public var truncatedBy: [String]
    public var limits: TraceLimits?
    /// `returned`/`raised` for a program; pytest's `passed`/`failed`/`error`/`skipped` for a test.
    public var outcome: String
    public var reason: String?
    /// `sys.monitoring` or `sys.settrace`; nil when nothing ran (the program or test did not load).
    public var tracer: String?
    public var threads: String
    public var python: String
    /// The CWM text rendering, relative to the output directory.
    public var cwm: String?
    /// How long a test's call phase ran, traced or not (tests only).
    public var seconds: Double?

    enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", testID = "test_id", entry, frames, truncated, truncatedBy = "truncated_by", limits,
             outcome, reason, tracer, threads, python, cwm, seconds
    }
}

/// What one tracer run in the jail produced, and where its files are.
public struct TraceOutput: Sendable {
    public var rows: [TraceRow]
    /// Holds `traces.jsonl` and `cwm/NNNN.txt`.
    public var directory: URL
    /// The jail command's exit code and its output's tail, for the record.
    public var exitCode: Int32?
    public var timedOut: Bool
    public var log: String

    /// The CWM text rendering of `row`.
    public func cwmText(_ row: TraceRow) throws -> String? {
        guard let cwm = row.cwm else { return nil }
        return try String(contentsOf: directory.appendingPathComponent(cwm), encoding: .utf8)
    }
}

/// Runs `warden_trace.py` (shipped in this module's resources) inside the jail.
public struct Tracer: Sendable {
    public var profile: SandboxProfile
    /// Where checkouts for traced runs are made.
    public var workRoot: URL
    public var limits = TraceLimits()
    /// The jail command's timeout (the tracer's per-test alarm is `testTimeout`).
    public var timeout: Double = 600
    public var testTimeout: Double = 60
    /// Runs the tests the same way without tracing: the baseline for the tracer's cost.
    public var untraced = false

    /// The folder, inside a checkout, that holds the tracer and its output.
    static let folder = ".warden-trace"

    public init(profile: SandboxProfile, workRoot: URL) {
        self.profile = profile
        self.workRoot = workRoot
    }

    public static func script() throws -> String {
        guard let url = Bundle.module.url(forResource: "warden_trace", withExtension: "py", subdirectory: "Resources") else {
            throw WardenError("trace.resource", "warden_trace.py is missing from the Traces bundle")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// Traces one call `entry(*args)` (or `entry(**args)` for a JSON object) of the program in `file`.
    /// The program is copied into a fresh folder that is the jail's checkout.
    public func traceProgram(file: URL, entry: String, argumentsJSON: String?, output: URL) async throws -> TraceOutput {
        let work = workRoot.appendingPathComponent("trace-\(UUID().uuidString.prefix(8))")
        defer { removeLogged(work) }
        let checkout = work.appendingPathComponent("checkout")
        try FileManager.default.createDirectory(at: checkout, withIntermediateDirectories: true)
        let name = file.lastPathComponent
        try FileManager.default.copyItem(at: file, to: checkout.appendingPathComponent(name))
        var command = "python3 \(Self.folder)/warden_trace.py --out \(Self.folder)/out \(limits.arguments) program"
        command += " --file \(Self.quoted(name)) --entry \(Self.quoted(entry))"
        if let argumentsJSON { command += " --args \(Self.quoted(argumentsJSON))" }
        return try await run(command, checkout: checkout, spill: work, output: output)
    }

    /// Traces the pytest (or unittest) tests `testIDs` of `task` at its base commit with its test patch,
    /// and with `patch` (the gold patch, say) when given. Runs `--test-timeout` per test.
    public func traceTests(_ task: TaskInstance, repository: URL, testIDs: [String], patch: String?, output: URL) async throws -> TraceOutput {
        guard let base = task.baseCommit else {
            throw WardenError("trace.task", "the task has no base commit", context: task.instanceID)
        }
        let work = workRoot.appendingPathComponent("trace-\(task.instanceID)-\(UUID().uuidString.prefix(8))")
        defer { removeLogged(work) }
        let checkout = work.appendingPathComponent("checkout")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try WorkspaceTracker.materialize(source: repository, commit: base, into: checkout)
        let folder = checkout.appendingPathComponent(Self.folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var command = "set -e\n"
        for (name, text) in [("test.patch", task.testPatch), ("fix.patch", patch)] {
            guard let text, !text.isEmpty else { continue }
            try Data(text.utf8).write(to: folder.appendingPathComponent(name))
            command += "git apply \(Self.folder)/\(name)\n"
        }
        command += "python3 \(Self.folder)/warden_trace.py --out \(Self.folder)/out \(limits.arguments) pytest"
        command += " --instance-id \(Self.quoted(task.instanceID)) --test-timeout \(testTimeout)\(untraced ? " --untraced" : "")"
        command += testIDs.map { " --test \(Self.quoted($0))" }.joined()
        command += " -- -o pythonpath=. -p no:cacheprovider -q --color=no"
        return try await run(command, checkout: checkout, spill: work, output: output)
    }

    private func run(_ command: String, checkout: URL, spill: URL, output: URL) async throws -> TraceOutput {
        let folder = checkout.appendingPathComponent(Self.folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(try Self.script().utf8).write(to: folder.appendingPathComponent("warden_trace.py"))
        let shell = ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout, spillDirectory: spill.path))
        defer { shell.close() }
        let result = try await shell.run(command, timeout: timeout)
        let produced = folder.appendingPathComponent("out")
        if FileManager.default.fileExists(atPath: output.path) { try FileManager.default.removeItem(at: output) }
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        var rows: [TraceRow] = []
        if FileManager.default.fileExists(atPath: produced.path) {
            try FileManager.default.copyItem(at: produced, to: output)
            rows = try Self.readRows(output.appendingPathComponent("traces.jsonl"))
        } else {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        }
        let log = String(result.combined.text.suffix(4000))
        try Data(log.utf8).write(to: output.appendingPathComponent("tracer.log"))
        return TraceOutput(rows: rows, directory: output, exitCode: result.exitCode, timedOut: result.timedOut, log: log)
    }

    /// Decodes `traces.jsonl`; a bad line is an error naming the file and the line.
    public static func readRows(_ url: URL) throws -> [TraceRow] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text = try String(contentsOf: url, encoding: .utf8)
        let decoder = JSONDecoder()
        return try text.split(separator: "\n").enumerated().map { index, line in
            do {
                return try decoder.decode(TraceRow.self, from: Data(line.utf8))
            } catch {
                throw WardenError("trace.output", "line \(index + 1) is not a trace row: \(error)", context: url.path)
            }
        }
    }

    /// One shell word, single-quoted.
    static func quoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private func removeLogged(_ url: URL) {
        do {
            try FileManager.default.removeItem(at: url)
        } catch {
            FileHandle.standardError.write(Data("warden: cannot remove \(url.path): \(error)\n".utf8))
        }
    }
}

/// Which of a task's tests to trace.
public enum TestSelection: Sendable, Hashable {
    case failing, all
    case ids([String])

    /// `failing`, `all`, or test ids.
    public init(_ words: [String]) {
        switch words {
        case ["failing"]: self = .failing
        case ["all"]: self = .all
        default: self = .ids(words)
        }
    }

    public func testIDs(of task: TaskInstance) -> [String] {
        switch self {
        case .failing: task.failToPass
        case .all: task.failToPass + task.passToPass
        case .ids(let ids): ids
        }
    }
}

/// A FAIL_TO_PASS test traced at the base and with the fix: one row of `before_after.jsonl`.
public struct BeforeAfter: Codable, Sendable {
    public var instanceID: String
    public var testID: String
    public var before: TraceRow?
    public var after: TraceRow?
    /// Whether the frames differ (kind, line, locals or value of any frame).
    public var differs: Bool

    enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", testID = "test_id", before, after, differs
    }

    /// Pairs rows by test id; a test with no row on one side keeps nil there.
    public static func pair(instanceID: String, testIDs: [String], before: [TraceRow], after: [TraceRow]) -> [BeforeAfter] {
        testIDs.map { id in
            let old = before.first { $0.testID == id }
            let new = after.first { $0.testID == id }
            return BeforeAfter(instanceID: instanceID, testID: id, before: old, after: new, differs: old?.frames != new?.frames)
        }
    }
}

extension Tracer {
    /// Whether the tracer can run `task`'s tests: its test command is pytest (the default), or
    /// Python's unittest, whose TestCase tests pytest collects (ids `test_x (mod.Class.test_x)`
    /// are mapped to pytest's node ids and rows keep the task's id).
    public static func tracesTests(of task: TaskInstance) -> Bool {
        guard let command = task.testCommand else { return true }
        return command.contains("pytest") || (task.logParser == .unittest && command.contains("python"))
    }
}
