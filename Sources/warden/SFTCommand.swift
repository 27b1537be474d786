import ArgumentParser
import Foundation
import Runs

/// `warden sft`: rejection-sampled SFT rows from finished runs.
struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Export resolved attempts of one or more runs as SFT rows (rejection sampling).",
        discussion: """
            Keeps resolved attempts that submitted without format errors, drops attempts of a task
            with the same patch (trailing whitespace ignored) or the same actions, keeps at most
            --per-task attempts per task chosen with --seed, and drops rows over --max-tokens.
            Token counts are estimates (UTF-8 bytes / 4, rounded up): no tokenizer is used.
            The output is written to a temporary file and renamed into place when complete.
            """
    )

    @Argument(help: "Run directories (each with results.jsonl and trajectories/).")
    var runDirectories: [String]

    @Option(name: .long, help: "The JSONL file to write.")
    var out: String

    @Option(name: .customLong("per-task"), help: "Attempts kept per task at most.")
    var perTask: Int = 3

    @Option(name: .long, help: "Seed for the choice among a task's attempts.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "openai (messages as recorded, native tool calls for the tools protocol) or cwm (CWM's text protocol).")
    var format: String = SFTFormat.openai.rawValue

    @Option(name: .customLong("max-tokens"), help: "Drop rows with more estimated tokens.")
    var maxTokens: Int = 32_768

    @Flag(name: .customLong("keep-format-errors"), help: "Keep attempts with format errors (their failed turns included).")
    var keepFormatErrors = false

    @Flag(name: .customLong("keep-limits"), help: "Keep resolved attempts that ended without submitting.")
    var keepLimits = false

    func validate() throws {
        if runDirectories.isEmpty { throw ValidationError("give at least one run directory") }
        if perTask < 1 { throw ValidationError("--per-task must be at least 1") }
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if SFTFormat(rawValue: format) == nil {
            throw ValidationError("--format must be one of \(SFTFormat.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(format)\"")
        }
    }

    func run() throws {
        let options = SFTOptions(perTask: perTask, seed: seed, format: SFTFormat(rawValue: format) ?? .openai, maxTokens: maxTokens,
                                 keepFormatErrors: keepFormatErrors, keepLimits: keepLimits)
        let report = try SFTExport.export(runs: runDirectories.map { URL(fileURLWithPath: $0) }, options: options,
                                          output: URL(fileURLWithPath: out))
        for problem in report.diagnostics { writeStandardError("warden sft: \(problem)\n") }
        writeStandardOutput(report.summary + "wrote \(report.selected.count) row(s) to \(out)\n")
    }
}
