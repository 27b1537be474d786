import ArgumentParser
import Foundation
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

    @Option(name: .long, help: "Folder of repositories for SWE-bench files.")
    var repos: String?

    @Option(name: .long, help: "Only tasks whose instance id matches this regular expression.")
    var filter: String?

    @Option(name: .long, help: "Sandbox profile.")
    var profile: String = "tests"

    @Option(name: .long, help: "Output directory.")
    var out: String = "warden-trace"

    @Option(name: .long, help: "Seconds one test may run before it counts as hanging.")
    var testTimeout: Double = 60

    func validate() throws {
        if (program == nil) == (suite == nil) { throw ValidationError("give either --program FILE --entry FUNC or a SUITE") }
        if program != nil && entry == nil { throw ValidationError("--program needs --entry FUNC") }
    }

    func run() async throws {
        let scratch = try ScratchDirectory()
        var tracer = Tracer(profile: try SandboxProfile.load(profile), workRoot: scratch.url)
        tracer.testTimeout = testTimeout
        let output = URL(fileURLWithPath: out)
        if let program, let entry {
            let result = try await tracer.traceProgram(file: URL(fileURLWithPath: program), entry: entry, argumentsJSON: args, output: output)
            for row in result.rows { writeStandardOutput(Self.summary(row)) }
            if result.rows.isEmpty { writeStandardError("warden: the tracer wrote nothing:\n\(result.log)\n") }
            return
        }
        guard let suite else { return }
        let loaded = try TaskSuite.load(suite, repos: repos.map { URL(fileURLWithPath: $0) }, cache: scratch.url.appendingPathComponent("repos"))
            .filtered(filter, limit: nil)
        for problem in loaded.problems { writeStandardError("warden: skipped \(problem)\n") }
        let selection = TestSelection(beforeAfter ? ["failing"] : tests)
        for task in loaded.tasks {
            let instance = task.instance
            let folder = output.appendingPathComponent(instance.instanceID)
            guard Tracer.tracesTests(of: instance) else {
                writeStandardError("\(instance.instanceID): not traced: its tests do not run under pytest (\(instance.testCommand ?? ""))\n")
                continue
            }
            let ids = selection.testIDs(of: instance)
            do {
                let after = try await tracer.traceTests(instance, repository: task.repository, testIDs: ids, patch: instance.goldPatch,
                                                        output: folder.appendingPathComponent("gold"))
                for row in after.rows { writeStandardOutput("\(instance.instanceID) gold " + Self.summary(row)) }
                if beforeAfter {
                    let before = try await tracer.traceTests(instance, repository: task.repository, testIDs: ids, patch: nil,
                                                             output: folder.appendingPathComponent("base"))
                    let pairs = BeforeAfter.pair(instanceID: instance.instanceID, testIDs: ids, before: before.rows, after: after.rows)
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    var lines = Data()
                    for pair in pairs {
                        lines.append(try encoder.encode(pair))
                        lines.append(0x0A)
                        writeStandardOutput("\(instance.instanceID) \(pair.testID): \(pair.differs ? "differs" : "same") between base and gold\n")
                    }
                    try lines.write(to: folder.appendingPathComponent("before_after.jsonl"))
                }
            } catch {
                writeStandardError("\(instance.instanceID): error: \(error)\n")
            }
        }
    }

    static func summary(_ row: TraceRow) -> String {
        let name = row.testID ?? row.entry
        let cut = row.truncated ? " truncated by \(row.truncatedBy.joined(separator: ","))" : ""
        return "\(name): \(row.outcome)\(row.reason.map { " (\($0))" } ?? ""), \(row.frames.count) frames\(cut)\n"
    }
}
