import ArgumentParser
import Foundation
import Runs
import Sandbox
import Tasks
import Traces
import WardenCore

/// `warden trace`: CWM-format execution traces of one function or of a suite's tests, in the jail.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Trace Python execution (CWM's format) of one function or of a suite's tests, in the jail.",
        discussion: """
            `warden trace --program count.py --entry count_letters --args '["strawberry", "r"]'`
            `warden trace Tasks/starter --tests failing --before-after`
            Writes traces.jsonl (structured rows) and cwm/NNNN.txt (CWM text) per run to --out.
            Suites: OUT/INSTANCE/gold/ (tests with the gold patch), with --before-after also base/ and
            before_after.jsonl. A task with OUT/INSTANCE/done.json is skipped: run again to resume.
            """
    )

    @Argument(help: "A suite directory, one task directory, or a SWE-bench .jsonl/.json file.")
    var suite: String?

    @Option(name: .long, help: "A Python file whose function --entry is traced.")
    var program: String?

    @Option(name: .long, help: "The function to trace in --program.")
    var entry: String?

    @Option(name: .long, help: "Arguments for --entry: a JSON list (positional) or object (keywords).")
    var args: String?

    @Option(name: .long, parsing: .upToNextOption, help: "failing (FAIL_TO_PASS), all, or test ids.")
    var tests: [String] = ["failing"]

    @Flag(name: .long, help: "Trace each FAIL_TO_PASS test at the base and with the gold patch, paired in before_after.jsonl.")
    var beforeAfter = false

    @Option(name: .long, help: "Your own repository: its tests (--tests ID...) traced on a fresh checkout of its HEAD.")
    var repo: String?

    @Option(name: .long, help: "Folder of repositories for SWE-bench files.")
    var repos: String?

    @Option(name: .long, help: "Only tasks whose instance id matches this regular expression.")
    var filter: String?

    @Option(name: .long, help: "Sandbox profile.")
    var profile: String = "tests"

    @Option(name: .long, help: "Output directory.")
    var out: String = "warden-trace"

    @Option(name: .long, help: "Tasks traced at once.")
    var workers: Int = 2

    @Option(name: .long, help: "Only this shard of the tasks, I/N, split as `warden run` splits them.")
    var shard: String?

    @Option(name: .long, help: "Seconds one test may run before it counts as hanging.")
    var testTimeout: Double = 60

    func validate() throws {
        if [program != nil, suite != nil, repo != nil].filter({ $0 }).count != 1 {
            throw ValidationError("give either --program FILE --entry FUNC, a SUITE, or --repo PATH --tests ID...")
        }
        if repo != nil && (tests == ["failing"] || tests == ["all"] || beforeAfter) {
            throw ValidationError("--repo traces the tests you name (--tests ID...): a repository has no FAIL_TO_PASS list or gold patch")
        }
        if program != nil && entry == nil { throw ValidationError("--program needs --entry FUNC") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let shard, AttemptPlan.parseShard(shard) == nil { throw ValidationError("--shard takes I/N with 1 <= I <= N, not \(shard)") }
    }

    func run() async throws {
        let scratch = try ScratchDirectory()
        var tracer = Tracer(profile: try SandboxProfile.load(profile), workRoot: scratch.url)
        tracer.testTimeout = testTimeout
        let output = URL(fileURLWithPath: out)
        if let program, let entry {
            report(try await tracer.traceProgram(file: URL(fileURLWithPath: program), entry: entry, argumentsJSON: args, output: output))
            return
        }
        if let repo {
            let url = URL(fileURLWithPath: repo)
            let instance = TaskInstance(instanceID: url.standardizedFileURL.lastPathComponent, problemStatement: "", baseCommit: "HEAD")
            report(try await tracer.traceTests(instance, repository: url, testIDs: tests, patch: nil, output: output))
            return
        }
        guard let suite else { return }
        let loaded = try SuiteOptions.load(suite, repos: repos, filter: filter, limit: nil, cache: scratch.url.appendingPathComponent("repos"))
        // The same shard rule as `warden run` (attempt 1 of each task).
        let owned = Set(AttemptPlan.attempts(for: loaded.tasks.map(\.instance.instanceID), attempts: 1, shard: shard.flatMap(AttemptPlan.parseShard))
            .map(\.instanceID))
        let tasks = loaded.tasks.filter { owned.contains($0.instance.instanceID) }
        let batch = TraceBatch(tracer: tracer, output: output, selection: TestSelection(tests), beforeAfter: beforeAfter, workers: workers)
        let total = tasks.count
        let summaries = try await batch.run(tasks) { summary, done in
            let outcomes = summary.outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            var line = "[\(done)/\(total)] \(summary.instanceID): \(summary.status)"
            if summary.traces > 0 { line += ", \(summary.traces) traces (\(outcomes)), \(summary.truncated) truncated" }
            if let differing = summary.differing { line += ", \(differing) FAIL_TO_PASS traces differ between base and gold" }
            if let reason = summary.reason { line += " (\(reason))" }
            writeStandardError(line + "\n")
        }
        if summaries.contains(where: { $0.status == "error" }) { throw ExitCode(1) }
    }

    /// One line per row on stdout; the tracer's log when it wrote no row.
    private func report(_ result: TraceOutput) {
        for row in result.rows { writeStandardOutput(Self.summary(row)) }
        if result.rows.isEmpty { writeStandardError("warden: the tracer wrote nothing:\n\(result.log)\n") }
    }

    static func summary(_ row: TraceRow) -> String {
        let name = row.testID ?? row.entry
        let cut = row.truncated ? " truncated by \(row.truncatedBy.joined(separator: ","))" : ""
        return "\(name): \(row.outcome)\(row.reason.map { " (\($0))" } ?? ""), \(row.frames.count) frames\(cut)\n"
    }
}
