import Environments
import Foundation
import Logging
import Sandbox
import WardenCore
import Workspace

/// The outcome of scoring one patch, in SWE-bench's report shape plus Warden's details.
public struct EvaluationResult: Sendable, Codable, Hashable {
    public var instanceID: String
    public var patchIsNone: Bool
    public var patchExists: Bool
    public var patchSuccessfullyApplied: Bool
    public var resolved: Bool
    /// The grade of the test run; nil when the tests did not run (the patch did not apply).
    public var resolution: ResolutionStatus?
    public var testsStatus: TestsStatus?
    /// Which method applied the patch: `git apply`, `git apply --3way` or `patch --fuzz=5`.
    public var applyMethod: String?
    public var testExitCode: Int32?
    /// Why the instance could not be graded normally (patch failed, tests timed out, exit-code rule).
    public var error: String?
    /// Model-patch changes to test files and test infrastructure that scoring undid.
    public var revertedPaths: [String]
    /// Time spent in the test command itself, and everything else (checkout, jail, apply, parse).
    public var testMilliseconds: Double
    public var overheadMilliseconds: Double
    /// Every test id the log reported, with its status.
    public var statuses: [String: TestStatus]

    /// `report.json` as SWE-bench writes it: `{instance_id: {patch_is_None, ..., tests_status}}`.
    public func swebenchReport() -> JSONValue {
        func list(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }
        var fields: [String: JSONValue] = [
            "patch_is_None": .bool(patchIsNone),
            "patch_exists": .bool(patchExists),
            "patch_successfully_applied": .bool(patchSuccessfullyApplied),
            "resolved": .bool(resolved),
            "warden": .object([
                "resolution": resolution.map { .string($0.rawValue) } ?? .null,
                "apply_method": applyMethod.map { .string($0) } ?? .null,
                "test_exit_code": testExitCode.map { .number(Double($0)) } ?? .null,
                "error": error.map { .string($0) } ?? .null,
                "reverted_paths": list(revertedPaths),
                "test_seconds": .number((testMilliseconds / 10).rounded() / 100),
                "overhead_seconds": .number((overheadMilliseconds / 10).rounded() / 100),
            ]),
        ]
        if let testsStatus {
            fields["tests_status"] = .object([
                "FAIL_TO_PASS": .object(["success": list(testsStatus.failToPass.success), "failure": list(testsStatus.failToPass.failure)]),
                "PASS_TO_PASS": .object(["success": list(testsStatus.passToPass.success), "failure": list(testsStatus.passToPass.failure)]),
            ])
        }
        return .object([instanceID: .object(fields)])
    }
}

/// Scores patches by the repository's own tests, in a fresh checkout and a fresh jail every
/// time, following the SWE-bench harness step by step so the logs and the grades agree with it.
public struct Evaluator: Sendable {
    public var profile: SandboxProfile
    /// The profile for the task's set-up commands (network allowed), run before the patch.
    public var setupProfile: SandboxProfile?
    /// Where fresh checkouts are made (and removed).
    public var workRoot: URL
    /// Where tasks' environments are built (with the set-up profile) and found; by default the
    /// default store with `setupProfile`, nil without one.
    public var environments: EnvironmentStore?

    public static let startMarker = "+ : '>>>>> Start Test Output'"
    public static let endMarker = "+ : '>>>>> End Test Output'"
    public static let exitCodePrefix = ">>>>> Test Exit Code: "
    public static let applyFailedMarker = ">>>>> Patch Apply Failed"
    static let defaultPythonCommand = "python3 -m pytest -o pythonpath=. -rA --color=no -p no:cacheprovider --tb=no {test_files}"

    public init(profile: SandboxProfile, setupProfile: SandboxProfile? = nil, workRoot: URL, environments: EnvironmentStore? = nil) {
        self.profile = profile
        self.setupProfile = setupProfile
        self.workRoot = workRoot
        self.environments = environments ?? setupProfile.map { EnvironmentStore(profile: $0) }
    }

    /// The task's built environment (built now if it is not in the store); nil for a task without one.
    public func environment(for task: TaskInstance, repository: URL) async throws -> PreparedEnvironment? {
        guard task.environment != nil else { return nil }
        guard let environments else {
            throw WardenError("eval.environment", "the task declares an environment but no environment store (or set-up profile) was given to build it",
                              context: task.instanceID)
        }
        return try await environments.prepare(for: task, repository: repository)
    }

    /// Scores `patch` (nil or empty: no patch) for `task`, whose base commit is in `repository`.
    /// Writes patch.diff, eval.sh, test_output.txt and report.json to `output` when given.
    ///
    /// Three jail steps over one fresh checkout: the task's set-up, the model patch (with
    /// SWE-bench's fallbacks), then the hidden tests. Between the last two, libgit2 compares the
    /// work tree with the base tree and puts back every test file and piece of test
    /// infrastructure the patch changed, however the patch spelled its file names.
    ///
    /// With an `image`, every jail runs in it on a fresh writable layer, the checkout bound at
    /// `mountPoint` (by default the image's repository directory), under the profiles' `-image` variants.
    /// A task with an `environment` gets it read-only in every jail (built first if needed), its
    /// checkout at `TaskEnvironmentMount.checkoutMountPoint`.
    public func evaluate(_ task: TaskInstance, repository: URL, patch: String?, output: URL? = nil,
                         image: JailImage? = nil, mountPoint: String? = nil) async throws -> EvaluationResult {
        let clock = ContinuousClock()
        let started = clock.now
        let environment = try await self.environment(for: task, repository: repository)?.mount
        let mountPoint = mountPoint ?? image?.checkoutMountPoint ?? (environment == nil ? nil : TaskEnvironmentMount.checkoutMountPoint)
        let profile = image == nil ? self.profile : try self.profile.forImage()
        let setupProfile = image == nil || task.setup.isEmpty ? self.setupProfile : try self.setupProfile?.forImage()
        guard let base = task.baseCommit else {
            throw WardenError("eval.task", "the task has no base commit", context: task.instanceID)
        }
        let work = workRoot.appendingPathComponent("eval-\(task.instanceID)-\(UUID().uuidString.prefix(8))")
        defer {
            // The grade stands without the cleanup; a work tree left behind is only scratch.
            do { try FileManager.default.removeItem(at: work) } catch {
                Logger(label: "warden.eval").debug("evaluation work tree not removed", metadata: ["path": "\(work.path)", "cause": "\(error)"])
            }
        }
        let checkout = work.appendingPathComponent("checkout")
        try await onOwnThread {
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            try WorkspaceTracker.materialize(source: repository, commit: base, into: checkout)
        }

        let modelPatch = patch ?? ""
        let hasPatch = !modelPatch.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        let testFiles = PatchPaths.touched(by: task.testPatch ?? "")
        let command = try testCommand(for: task, testFiles: testFiles, checkout: checkout)
        let parser = task.logParser ?? .pytest
        let nonce = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let applyScript = hasPatch ? Self.applyScript(modelPatch: modelPatch) : ""
        let testScript = Self.testScript(testPatch: task.testPatch ?? "", testCommand: command, parser: parser, nonce: nonce)

        if !task.setup.isEmpty {
            guard let setupProfile else {
                throw WardenError("eval.setup", "the task has set-up commands but no set-up profile was given", context: task.instanceID)
            }
            let setup = ShellSession(configuration: try JailConfiguration(profile: setupProfile, checkout: checkout, image: image,
                                                                         mountPoint: mountPoint, environmentMount: environment))
            defer { setup.close() }
            for step in task.setup {
                let result = try await setup.run(step)
                guard result.exitCode == 0 else {
                    throw WardenError("eval.setup", "set-up command failed (exit \(result.exitCode.map(String.init) ?? "none")): \(step)\n\(result.combined.text.suffix(2000))",
                                      context: task.instanceID)
                }
            }
        }
        var result = EvaluationResult(
            instanceID: task.instanceID, patchIsNone: patch == nil, patchExists: hasPatch, patchSuccessfullyApplied: false,
            resolved: false, revertedPaths: [], testMilliseconds: 0, overheadMilliseconds: 0, statuses: [:])
        let shell = ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout, spillDirectory: work.path,
                                                                     image: image, mountPoint: mountPoint, environmentMount: environment))
        defer { shell.close() }
        let timeout = (task.timeoutSeconds ?? profile.limits.commandTimeoutSeconds) + 120
        var log = ""
        var preexisting = Set<String>()

        if hasPatch {
            let applied = try await apply(modelPatch, script: applyScript, base: base, checkout: checkout, shell: shell, hadSetup: !task.setup.isEmpty)
            log += applied.log
            preexisting = applied.preexisting
            result.applyMethod = applied.method
            result.patchSuccessfullyApplied = applied.method != nil && applied.refusal == nil
            if let refusal = applied.refusal {
                result.error = "patch refused: \(refusal)"
            } else if applied.method == nil {
                result.error = "patch failed to apply"
            }
        }
        if result.error == nil {
            if hasPatch {
                let commandPaths = Self.pathsNamed(by: command)
                let preexisting = preexisting
                result.revertedPaths = try await onOwnThread {
                    try Self.restoreTestInfrastructure(in: checkout, base: base, testFiles: Set(testFiles), commandPaths: commandPaths,
                                                       preexisting: preexisting)
                }
                if !result.revertedPaths.isEmpty { log += ">>>>> Restored to base: \(result.revertedPaths.joined(separator: " "))\n" }
            }
            let run = try await shell.run(testScript, timeout: timeout, spill: true)
            let testLog = try Self.fullOutput(of: run)
            log += testLog
            if run.timedOut {
                result.error = "the tests did not finish within \(Int(timeout)) s"
            } else if testLog.contains(">>>>> Test Patch Apply Failed") {
                result.error = "the test patch failed to apply: the task is broken"
            } else {
                let testOutput = Self.testOutput(of: testLog)
                let exitCode = testLog.split(separator: "\n").last { $0.hasPrefix(Self.exitCodePrefix) }
                    .flatMap { Int32($0.dropFirst(Self.exitCodePrefix.count)) }
                result.testExitCode = exitCode
                var parsed = parser.parse(testOutput)
                if parser == .pytest {
                    parsed = confirm(parsed, by: JUnitLogParser.parsePytestReport(Self.report(in: testLog, nonce: nonce)))
                }
                result.statuses = parsed.statuses
                let grade = grade(parsed: parsed, failToPass: task.failToPass, passToPass: task.passToPass, testExitCode: exitCode)
                result.resolution = grade.resolution
                result.testsStatus = grade.testsStatus
                result.error = grade.error
                result.resolved = result.patchSuccessfullyApplied && grade.resolution == .full
                result.testMilliseconds = Self.testMilliseconds(testLog)
            }
        }
        let elapsed = clock.now - started
        result.overheadMilliseconds = max(0, Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            - result.testMilliseconds)

        if let output {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            try Data(modelPatch.utf8).write(to: output.appendingPathComponent("patch.diff"))
            try Data((applyScript + testScript).utf8).write(to: output.appendingPathComponent("eval.sh"))
            try Data(log.utf8).write(to: output.appendingPathComponent("test_output.txt"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(result.swebenchReport()).write(to: output.appendingPathComponent("report.json"))
        }
        return result
    }

    /// What applying the model patch did: the method that worked, or why the patch was refused.
    struct Applied {
        var log: String
        var method: String?
        var refusal: String?
        /// Paths the set-up had already changed, which are not the patch's.
        var preexisting: Set<String> = []
    }

    /// Applies the model patch in the jail, refusing before it what `git apply` would refuse
    /// (paths into `.git/`, absolute, with `..`, through a symlink) and after it any write
    /// into `.git/` or, for the 3-way and fuzzy fallbacks, to a path the patch does not name.
    func apply(_ patch: String, script: String, base: String, checkout: URL, shell: ShellSession, hadSetup: Bool) async throws -> Applied {
        let named = PatchPaths.named(by: patch)
        if let refusal = PatchPaths.refusal(for: named, in: checkout) {
            return Applied(log: ">>>>> Patch Refused: \(refusal)\n", refusal: refusal)
        }
        let before = try await onOwnThread { () -> (GitDirectoryState, [String]) in
            (try GitDirectoryState(checkout), hadSetup ? try CheckoutDiff(checkout: checkout, commit: base).changedPaths() : [])
        }
        let run = try await shell.run(script, spill: true)
        var applied = Applied(log: try Self.fullOutput(of: run), preexisting: Set(before.1))
        applied.method = applied.log.split(separator: "\n").first { $0.hasPrefix(">>>>> Applied Patch (") }
            .map { String($0.dropFirst(">>>>> Applied Patch (".count).dropLast()) }
        guard let method = applied.method else { return applied }
        let changed = try await onOwnThread { () -> [String]? in
            guard try GitDirectoryState(checkout) == before.0 else { return nil }
            return try CheckoutDiff(checkout: checkout, commit: base).changedPaths().filter { !before.1.contains($0) }
        }
        guard let changed else {
            applied.refusal = "applying it (\(method)) wrote into .git/"
            return applied
        }
        if method != "git apply" {
            let allowed = Set(named.names.flatMap(PatchPaths.candidates))
            let stray = changed.filter { !allowed.contains($0) }
            if !stray.isEmpty {
                applied.refusal = "\(method) changed paths the patch does not name: \(stray.sorted().joined(separator: ", "))"
            }
        }
        return applied
    }

    /// Puts back, from the base tree, every changed path that is a test file of the task or test
    /// infrastructure; only the pytest sections of setup.cfg and pyproject.toml. Returns them.
    static func restoreTestInfrastructure(in checkout: URL, base: String, testFiles: Set<String>, commandPaths: Set<String>,
                                          preexisting: Set<String>) throws -> [String] {
        let diff = try CheckoutDiff(checkout: checkout, commit: base)
        let baseNames = try diff.topLevelNames()
        var restored: [String] = []
        for path in try diff.changedPaths() where !preexisting.contains(path) {
            if testFiles.contains(path) || TestInfrastructure.isInfrastructure(path, baseTopLevel: baseNames, commandPaths: commandPaths) {
                try diff.restore(path)
                restored.append(path)
            } else if let kind = TestInfrastructure.ConfigSections(path: path) {
                let current = (try? Data(contentsOf: checkout.appendingPathComponent(path))).map { String(decoding: $0, as: UTF8.self) }
                let original = try diff.baseContents(of: path).map { String(decoding: $0, as: UTF8.self) }
                guard let current else { continue }
                let merged = kind.restoringSections(of: current, from: original ?? "")
                guard merged != current else { continue }
                if let merged {
                    try Data(merged.utf8).write(to: checkout.appendingPathComponent(path))
                } else {
                    try diff.restore(path)
                }
                restored.append(path)
            }
        }
        return restored.sorted()
    }

    /// The words of a test command, which may name its scripts (`bash tests/run.sh`), and the
    /// makefiles when it runs `make`.
    static func pathsNamed(by command: String) -> Set<String> {
        var words = Set(command.split { " \t\n;&|()'\"".contains($0) }.map { String($0).hasPrefix("./") ? String($0.dropFirst(2)) : String($0) })
        if words.contains("make") { words.formUnion(["Makefile", "makefile", "GNUmakefile"]) }
        return words
    }

    /// The whole of a command's output: the spilled file, which head and tail capture cannot cut.
    static func fullOutput(of run: CommandResult) throws -> String {
        guard let path = run.spillPath else { return run.combined.text }
        return String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
    }

    /// The machine-readable report the script printed (base64) after the tests, or "" when none.
    static func report(in log: String, nonce: String) -> String {
        let header = ">>>>> Report \(nonce)\n"
        guard let start = log.range(of: header, options: .backwards) else { return "" }
        let line = log[start.upperBound...].prefix { $0 != "\n" }
        guard let data = Data(base64Encoded: String(line)) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The task's test command with `{test_files}` expanded; Python repositories default to pytest.
    func testCommand(for task: TaskInstance, testFiles: [String], checkout: URL) throws -> String {
        var command = task.testCommand
        if command == nil {
            let markers = ["setup.py", "pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini"]
            let isPython = markers.contains { FileManager.default.fileExists(atPath: checkout.appendingPathComponent($0).path) }
                || testFiles.contains { $0.hasSuffix(".py") }
            guard isPython else {
                throw WardenError("eval.task", "the task has no test_cmd and is not a Python repository; add test_cmd and log_parser", context: task.instanceID)
            }
            command = Self.defaultPythonCommand
        }
        let quoted = testFiles.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return (command ?? "").replacingOccurrences(of: "{test_files}", with: quoted)
    }

    static func heredoc(_ text: String, into path: String) -> String {
        var delimiter = "WARDEN_EOF"
        while text.contains(delimiter) { delimiter += "_" }
        let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
        return "cat > \(path) <<'\(delimiter)'\n\(body)\n\(delimiter)\n"
    }

    /// SWE-bench's apply step: `git apply`, then `git apply --3way`, then `patch --fuzz=5`
    /// (without backup files, so that the fallback changes only what the patch names).
    static func applyScript(modelPatch: String) -> String {
        // One stream, so the log's lines stay whole and in order.
        "exec 2>&1\n" + heredoc(modelPatch, into: "/tmp/warden-model.patch") + """
            warden_applied=""
            if git apply --verbose /tmp/warden-model.patch; then warden_applied="git apply"
            else
              git reset -q --hard; git clean -qfd
              if git apply --verbose --3way /tmp/warden-model.patch; then warden_applied="git apply --3way"
              else
                git reset -q --hard; git clean -qfd
                if patch --batch --fuzz=5 --no-backup-if-mismatch -p1 -i /tmp/warden-model.patch; then warden_applied="patch --fuzz=5"; fi
              fi
            fi
            if [ -z "$warden_applied" ]; then echo '\(applyFailedMarker)'; else echo ">>>>> Applied Patch ($warden_applied)"; fi

            """
    }

    /// The test step, after scoring restored the test files: apply the hidden tests, run them
    /// between the markers with the runner taken from the environment, print the exit code and
    /// (pytest) the runner's own report, written outside the checkout.
    static func testScript(testPatch: String, testCommand: String, parser: LogParser, nonce: String) -> String {
        var script = "exec 2>&1\n"
        if !testPatch.isEmpty {
            script += heredoc(testPatch, into: "/tmp/warden-test.patch")
            script += "git apply --verbose /tmp/warden-test.patch || { echo '>>>>> Test Patch Apply Failed'; exit 1; }\n"
        }
        let report = "/tmp/warden-report-\(nonce)/report.xml"
        // The checkout is not first on sys.path when Python starts, so it cannot replace the runner.
        script += "export PYTHONSAFEPATH=1 PYTHONNOUSERSITE=1\n"
        if parser == .pytest {
            script += "export PYTEST_ADDOPTS=\"${PYTEST_ADDOPTS:-} --junitxml=\(report) -o junit_family=xunit1\"\n"
        }
        script += """
            echo "\(startMarker)"
            warden_test_started=$(date +%s%N)
            \(testCommand)
            warden_test_status=$?
            warden_test_ended=$(date +%s%N)
            echo "\(endMarker)"
            echo "\(exitCodePrefix)$warden_test_status"
            echo ">>>>> Test Nanoseconds: $((warden_test_ended - warden_test_started))"

            """
        if parser == .pytest {
            script += "if [ -f \(report) ]; then echo '>>>>> Report \(nonce)'; base64 -w0 \(report); echo; fi\n"
        }
        return script
    }

    /// The lines between the start and end markers.
    static func testOutput(of log: String) -> String {
        guard let start = log.range(of: startMarker + "\n") else { return "" }
        let rest = log[start.upperBound...]
        guard let end = rest.range(of: endMarker, options: .backwards) else { return String(rest) }
        return String(rest[..<end.lowerBound])
    }

    static func testMilliseconds(_ log: String) -> Double {
        let prefix = ">>>>> Test Nanoseconds: "
        guard let line = log.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }),
              let nanoseconds = Double(line.dropFirst(prefix.count)) else { return 0 }
        return nanoseconds / 1e6
    }
}

