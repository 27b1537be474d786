import ArgumentParser
import Foundation
import Images
import Runs
import Sandbox
import Scoring
import Tasks
import WardenCore

/// Where a suite comes from, and which of its tasks to take.
struct SuiteOptions: ParsableArguments {
    @Argument(help: "A suite directory (Tasks/starter), one task directory, or a SWE-bench .jsonl/.json file.")
    var suite: String

    @Option(name: .long, help: "Folder of repositories for SWE-bench files: DIR/OWNER__NAME or DIR/OWNER/NAME.")
    var repos: String?

    @Option(name: .long, help: "Only tasks whose instance id matches this regular expression.")
    var filter: String?

    @Option(name: .long, help: "At most this many tasks.")
    var limit: Int?

    @Option(name: .long, help: """
        The image of every task whose row names none: {instance} is the id in SWE-bench's image naming, {id} the id as is;         'swebench' is swebench/sweb.eval.x86_64.{instance}:latest.
        """)
    var imageTemplate: String?

    /// Loads the suite, reporting rows that could not be loaded on stderr.
    func load(cache: URL) throws -> TaskSuite {
        try Self.load(suite, repos: repos, filter: filter, limit: limit, imageTemplate: imageTemplate, cache: cache)
    }

    /// Loads `path` as the options say, for commands whose suite argument is optional.
    static func load(_ path: String, repos: String?, filter: String?, limit: Int?, imageTemplate: String? = nil,
                     cache: URL) throws -> TaskSuite {
        var suite = try TaskSuite.load(path, repos: repos.map { URL(fileURLWithPath: $0) }, cache: cache,
                                       imagesHoldRepositories: imageTemplate != nil).filtered(filter, limit: limit)
        for problem in suite.problems { writeStandardError("warden: skipped \(problem)\n") }
        if let imageTemplate {
            for index in suite.tasks.indices where suite.tasks[index].instance.image == nil {
                suite.tasks[index].instance.image = ImageTemplate.expand(imageTemplate, instanceID: suite.tasks[index].instance.instanceID)
            }
        }
        return suite
    }
}

/// Tasks' images from the default store (`$WARDEN_IMAGES`), with `WARDEN_REGISTRY_MIRROR`'s mirrors.
func taskImages() throws -> TaskImages {
    TaskImages(store: ImageStore(registry: try RegistryConfiguration.fromEnvironment()))
}

/// A scratch folder for one command, removed when it ends.
final class ScratchDirectory {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-\(UUID().uuidString)")

    init() throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        removeScratch(url)
    }
}

/// `warden eval`: score predictions by each task's tests.
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score predictions (SWE-bench JSONL, a JSON list or a dict keyed by id) by each task's tests.",
        discussion: """
            Writes, per instance, OUT/<instance_id>/{patch.diff, eval.sh, test_output.txt, report.json} in
            SWE-bench's shape, and OUT/report.json with the run's counts and id lists. --predictions gold
            scores each task's gold patch; empty scores no patch.
            """
    )

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var suiteOptions: SuiteOptions

    @Option(name: .long, help: "A predictions file, `gold` or `empty`.")
    var predictions: String

    @Option(name: .long, help: "Output directory.")
    var out: String = "warden-eval"

    @Option(name: .long, help: "Instances scored at once.")
    var workers: Int = 2

    @Option(name: .long, help: "Sandbox profile for the tests.")
    var profile: String = "tests"

    func validate() throws {
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
    }

    func run() async throws {
        try logging.bootstrap()
        let scratch = try ScratchDirectory()
        let suite = try suiteOptions.load(cache: scratch.url.appendingPathComponent("repos"))
        var patches: [String: String] = [:]
        switch predictions {
        case "gold": for task in suite.tasks { patches[task.instance.instanceID] = task.instance.goldPatch ?? "" }
        case "empty": for task in suite.tasks { patches[task.instance.instanceID] = "" }
        default:
            let loaded = try Predictions.load(URL(fileURLWithPath: predictions))
            for problem in loaded.problems { writeStandardError("warden: skipped prediction \(problem)\n") }
            let known = Set(suite.tasks.map(\.instance.instanceID))
            for id in loaded.patches.keys.sorted() where !known.contains(id) {
                writeStandardError("warden: prediction for \(id), which is not in the suite: ignored\n")
            }
            patches = loaded.patches
        }
        let evaluator = Evaluator(profile: try SandboxProfile.load(profile), setupProfile: try SandboxProfile.load("setup"),
                                  workRoot: scratch.url)
        let images = try taskImages()
        let output = URL(fileURLWithPath: out)
        var report = RunReport()
        report.totalInstances = suite.tasks.count + suite.problems.count
        var rows: [(String, String)] = []
        let tasks = suite.tasks.filter { patches[$0.instance.instanceID] != nil }
        try await withThrowingTaskGroup(of: (String, EvaluationResult?, String?).self) { group in
            var next = tasks.makeIterator()
            func startNext() {
                guard let task = next.next() else { return }
                let patch = patches[task.instance.instanceID] ?? ""
                group.addTask {
                    if patch.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && predictions != "empty" {
                        return (task.instance.instanceID, nil, "empty patch")
                    }
                    do {
                        let image = try await images.image(for: task.instance)
                        let result = try await evaluator.evaluate(task.instance, repository: try await task.repository(in: image, images: images), patch: patch,
                                                                  output: output.appendingPathComponent(task.instance.instanceID),
                                                                  image: image)
                        return (task.instance.instanceID, result, nil)
                    } catch {
                        return (task.instance.instanceID, nil, "\(error)")
                    }
                }
            }
            for _ in 0..<workers { startNext() }
            while let (id, result, failure) = try await group.next() {
                let empty = failure == "empty patch" || predictions == "empty"
                report.record(id, submitted: true, emptyPatch: empty && result == nil, result: result)
                let status = result.map { r in r.resolved ? "resolved" : (r.patchSuccessfullyApplied || !r.patchExists ? (r.resolution?.rawValue ?? "unresolved") : "patch failed to apply") }
                    ?? failure ?? "error"
                rows.append((id, status + (result?.error.map { " (\($0))" } ?? "")))
                writeStandardError("\(id): \(status)\n")
                startNext()
            }
        }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: output.appendingPathComponent("report.json"))

        let width = max(11, rows.map(\.0.count).max() ?? 0)
        var table = "\n" + "instance".padding(toLength: width, withPad: " ", startingAt: 0) + "  result\n"
        for (id, status) in rows.sorted(by: { $0.0 < $1.0 }) {
            table += id.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + status + "\n"
        }
        table += "\ntotal \(report.totalInstances)  submitted \(report.submittedInstances)  completed \(report.completedInstances)  "
        table += "resolved \(report.resolvedInstances)  unresolved \(report.unresolvedInstances)  empty patch \(report.emptyPatchInstances)  "
        table += "error \(report.errorInstances)\nreport: \(output.appendingPathComponent("report.json").path)\n"
        writeStandardOutput(table)
    }
}

/// `warden tasks`: list and validate suites.
struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "List or validate a task suite.",
        subcommands: [List.self, Validate.self]
    )

    struct List: ParsableCommand {
        // Named here, not derived from the type: deriving casts the type to three protocols,
        // each a scan of every conformance in the binary, on every `warden` start.
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List a suite's tasks with their base commits and tests.")

        @OptionGroup var suiteOptions: SuiteOptions

        func run() throws {
            let scratch = try ScratchDirectory()
            let suite = try suiteOptions.load(cache: scratch.url)
            let width = max(8, suite.tasks.map(\.instance.instanceID.count).max() ?? 0)
            var text = "instance".padding(toLength: width, withPad: " ", startingAt: 0) + "  base          F2P  P2P  parser\n"
            for task in suite.tasks {
                let instance = task.instance
                text += instance.instanceID.padding(toLength: width, withPad: " ", startingAt: 0)
                text += "  " + String((instance.baseCommit ?? "?").prefix(12))
                text += "  " + String(format: "%3d  %3d  ", instance.failToPass.count, instance.passToPass.count) + (instance.logParser ?? .pytest).rawValue + "\n"
            }
            text += "\(suite.tasks.count) tasks" + (suite.problems.isEmpty ? "" : ", \(suite.problems.count) could not be loaded") + "\n"
            writeStandardOutput(text)
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Check every task: the gold patch resolves in every run, the empty patch does not, the tests exist, none is flaky.")

        @OptionGroup var suiteOptions: SuiteOptions

        @Option(name: .long, help: "Gold runs per task (flaky tests show up as status changes).")
        var runs: Int = 2

        @Option(name: .long, help: "Tasks validated at once.")
        var workers: Int = 2

        func run() async throws {
            let scratch = try ScratchDirectory()
            let suite = try suiteOptions.load(cache: scratch.url.appendingPathComponent("repos"))
            let evaluator = Evaluator(profile: try SandboxProfile.load("tests"), setupProfile: try SandboxProfile.load("setup"), workRoot: scratch.url)
            let images = try taskImages()
            var failures = suite.problems.count
            try await withThrowingTaskGroup(of: TaskValidation.self) { group in
                var next = suite.tasks.makeIterator()
                func startNext() {
                    guard let task = next.next() else { return }
                    group.addTask { try await TaskValidation.run(task, evaluator: evaluator, images: images, runs: runs) }
                }
                for _ in 0..<max(1, workers) { startNext() }
                while let validation = try await group.next() {
                    writeStandardOutput(validation.summary + "\n")
                    if !validation.problems.isEmpty { failures += 1 }
                    startNext()
                }
            }
            writeStandardOutput("\(suite.tasks.count - failures + suite.problems.count) of \(suite.tasks.count + suite.problems.count) tasks valid\n")
            if failures > 0 { throw ExitCode(1) }
        }
    }
}

/// The checks `warden tasks validate` makes on one task.
struct TaskValidation: Sendable {
    var id: String
    var problems: [String]
    var flaky: [String]
    var testSeconds: [Double]

    static func run(_ task: SuiteTask, evaluator: Evaluator, images: TaskImages, runs: Int) async throws -> TaskValidation {
        let instance = task.instance
        let image = try await images.image(for: instance)
        let repository = try await task.repository(in: image, images: images)
        var validation = TaskValidation(id: instance.instanceID, problems: [], flaky: [], testSeconds: [])
        if instance.failToPass.isEmpty { validation.problems.append("FAIL_TO_PASS is empty") }
        if (instance.goldPatch ?? "").isEmpty { validation.problems.append("no gold patch") }
        var seen: [[String: TestStatus]] = []
        for run in 1...max(1, runs) {
            let gold = try await evaluator.evaluate(instance, repository: repository, patch: instance.goldPatch, image: image)
            validation.testSeconds.append(gold.testMilliseconds / 1000)
            seen.append(gold.statuses)
            if !gold.resolved {
                let failing = (gold.testsStatus?.failToPass.failure ?? []) + (gold.testsStatus?.passToPass.failure ?? [])
                validation.problems.append("gold run \(run) does not resolve" + (gold.error.map { ": \($0)" } ?? "")
                    + (failing.isEmpty ? "" : "; failing: \(failing.prefix(5).joined(separator: ", "))"))
            }
            let missing = (instance.failToPass + instance.passToPass).filter { gold.statuses[$0] == nil }
            if run == 1 && !missing.isEmpty {
                validation.problems.append("tests not in the log: \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? " and \(missing.count - 5) more" : "")")
            }
        }
        let empty = try await evaluator.evaluate(instance, repository: repository, patch: nil, image: image)
        if empty.resolution == .full { validation.problems.append("the empty patch resolves the task") }
        let ids = Set(seen.flatMap(\.keys))
        validation.flaky = ids.filter { id in Set(seen.map { $0[id] }).count > 1 }.sorted()
        if !validation.flaky.isEmpty { validation.problems.append("flaky: \(validation.flaky.joined(separator: ", "))") }
        return validation
    }

    var summary: String {
        let seconds = testSeconds.map { String(format: "%.1f", $0) }.joined(separator: "/")
        return problems.isEmpty ? "ok    \(id)  (tests \(seconds) s)" : "FAIL  \(id): " + problems.joined(separator: "; ")
    }
}
