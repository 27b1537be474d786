import Agent
import ArgumentParser
import Foundation
import Sandbox
import Scoring
import Synth
import WardenCore

/// `warden synth`: tasks made from a repository whose tests pass, by planting bugs.
struct SynthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Turn a repository whose tests pass into validated tasks by mutating its code (SWE-smith style).",
        discussion: """
            REPO is a repository directory (its HEAD, or its files) or a suite task directory (its
            repository with the gold and test patches applied). The tests run three times first;
            flaky tests are dropped and a repository without a stable passing suite is refused.
            Mutants are kept when some test fails with them in two runs and some other test passes.
            The failing tests' files are hidden from the agent and come back as the test patch
            (--keep-tests leaves them in). OUT is a suite for `warden run`, `eval` and `sft`;
            running the same command again resumes it.
            """
    )

    @OptionGroup var logging: LoggingOptions

    @Argument(help: "A repository directory or a suite task directory.")
    var source: String

    @Option(name: .long, help: "The suite directory to write (resumable).")
    var out: String

    @Option(name: .long, help: "Tasks to keep; about a fifth of them combine two mutants in different files.")
    var maxTasks: Int = 20

    @Option(name: .long, help: "Candidates tried at most (default 15 per task wanted).")
    var maxCandidates: Int?

    @Option(name: .long, help: "Seed of the candidates' order and of the issue wording.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Suites run at once, each in its own checkout and jail.")
    var workers: Int = 2

    @Option(name: .long, help: "Seconds one run of the suite may take (default: four times the slowest baseline run, at least 30).")
    var timeout: Double?

    @Flag(name: .long, help: "Leave the failing tests' files in the agent's checkout (SWE-smith) instead of hiding them (R2E-Gym).")
    var keepTests = false

    @Option(name: .long, help: "A model writes the issues: replay:FILE or openai:BASE_URL (with --model-name). Templates otherwise.")
    var model: String?

    @Option(name: .long, help: "The model name sent to an OpenAI-compatible server.")
    var modelName: String?

    @Option(name: .long, help: "The prompt for --model, a file with {repository}, {command}, {failing_tests}, {output}, {count}, {passing_count}.")
    var promptTemplate: String?

    @Option(name: .long, help: "The test command for a plain repository; {test_files} becomes its test files (default: detected).")
    var testCmd: String?

    @Option(name: .long, help: "The log parser for --test-cmd (pytest, unittest, node, cargo, tap, ...).")
    var logParser: String?

    @Option(name: .long, help: "Sandbox profile for the tests.")
    var profile: String = "tests"

    func validate() throws {
        if maxTasks < 1 { throw ValidationError("--max-tasks must be at least 1") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be a positive number of seconds") }
        if let logParser, LogParser(rawValue: logParser) == nil {
            throw ValidationError("--log-parser must be one of \(LogParser.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let model, !(model.hasPrefix("replay:") || model.hasPrefix("openai:")) {
            throw ValidationError("--model for issues must be replay:FILE or openai:BASE_URL, not \(model)")
        }
    }

    func run() async throws {
        try logging.bootstrap()
        let scratch = try ScratchDirectory()
        let prepared = try SynthSource.prepare(source, work: scratch.url, testCommand: testCmd, logParser: logParser.flatMap(LogParser.init(rawValue:)))
        var writer = IssueWriter.template
        var client: (any ModelClient)?
        if let model {
            var arguments = ["--model", model]
            if let modelName { arguments += ["--model-name", modelName] }
            let options = try ModelOptions.parse(arguments)
            let made = try options.makeClient(goldPatch: nil, protocol: FencedProtocol())
            client = made
            let prompt = try promptTemplate.map { path in
                do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                    throw WardenError("synth.prompt", "cannot read the prompt template: \(error.localizedDescription)", context: path)
                }
            }
            writer = .model(promptTemplate: prompt) { text in
                try await made.complete(ModelRequest(messages: [ChatMessage(role: .user, content: text)])).content
            }
        }
        let terminal = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let synthesizer = Synthesizer(
            source: prepared,
            configuration: SynthConfiguration(output: URL(fileURLWithPath: out), maxTasks: maxTasks, seed: seed, workers: workers,
                                              timeout: timeout, keepTests: keepTests, maxCandidates: maxCandidates),
            profile: try SandboxProfile.load(profile), issueWriter: writer,
            progress: { progress in
                let line = "[synth \(progress.phase)] tried \(progress.tried), kept \(progress.kept), dropped \(progress.dropped)"
                    + (progress.last.map { " | \($0)" } ?? "")
                if terminal {
                    writeStandardError("\r\u{1b}[2K" + String(line.prefix(160)))
                } else if progress.tried % 10 == 0 {
                    writeStandardError(line + "\n")
                }
            })
        let summary: SynthSummary
        do {
            summary = try await synthesizer.run(work: scratch.url)
        } catch let refusal as SynthRefusal {
            if terminal { writeStandardError("\n") }
            if let client { await shutdown(client) }
            writeStandardError("warden: \(refusal)\n")
            throw ExitCode(2)
        }
        if let client { await shutdown(client) }
        if terminal { writeStandardError("\n") }
        writeStandardOutput(summary.text + "\nsuite: \(out)\n")
    }
}
