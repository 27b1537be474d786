import Foundation
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

    public static let startMarker = "+ : '>>>>> Start Test Output'"
    public static let endMarker = "+ : '>>>>> End Test Output'"
    public static let exitCodePrefix = ">>>>> Test Exit Code: "
    public static let applyFailedMarker = ">>>>> Patch Apply Failed"
    static let defaultPythonCommand = "python3 -m pytest -rA --color=no -p no:cacheprovider --tb=no {test_files}"

    public init(profile: SandboxProfile, setupProfile: SandboxProfile? = nil, workRoot: URL) {
        self.profile = profile
        self.setupProfile = setupProfile
        self.workRoot = workRoot
    }

    /// Scores `patch` (nil or empty: no patch) for `task`, whose base commit is in `repository`.
    /// Writes patch.diff, eval.sh, test_output.txt and report.json to `output` when given.
    public func evaluate(_ task: TaskInstance, repository: URL, patch: String?, output: URL? = nil) async throws -> EvaluationResult {
        let clock = ContinuousClock()
        let started = clock.now
        guard let base = task.baseCommit else {
            throw WardenError("eval.task", "the task has no base commit", context: task.instanceID)
        }
        let work = workRoot.appendingPathComponent("eval-\(task.instanceID)-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: work) }
        let checkout = work.appendingPathComponent("checkout")
        try await onOwnThread {
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            try WorkspaceTracker.materialize(source: repository, commit: base, into: checkout)
        }

        let modelPatch = patch ?? ""
        let hasPatch = !modelPatch.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        let testFiles = PatchPaths.touched(by: task.testPatch ?? "")
        let reverted = PatchPaths.touched(by: modelPatch).filter { PatchPaths.isTestInfrastructure($0) || testFiles.contains($0) }
        let command = try testCommand(for: task, testFiles: testFiles, checkout: checkout)
        let script = Self.script(base: base, modelPatch: hasPatch ? modelPatch : nil, revert: Array(Set(reverted + testFiles)).sorted(),
                                 testPatch: task.testPatch ?? "", testCommand: command)

        if !task.setup.isEmpty {
            guard let setupProfile else {
                throw WardenError("eval.setup", "the task has set-up commands but no set-up profile was given", context: task.instanceID)
            }
            let setup = ShellSession(configuration: try JailConfiguration(profile: setupProfile, checkout: checkout))
            defer { setup.close() }
            for step in task.setup {
                let result = try await setup.run(step)
                guard result.exitCode == 0 else {
                    throw WardenError("eval.setup", "set-up command failed (exit \(result.exitCode.map(String.init) ?? "none")): \(step)\n\(result.combined.text.suffix(2000))",
                                      context: task.instanceID)
                }
            }
        }
        let shell = ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout))
        defer { shell.close() }
        let timeout = (task.timeoutSeconds ?? profile.limits.commandTimeoutSeconds) + 120
        let run = try await shell.run(script, timeout: timeout)
        let log = run.combined.text

        var result = EvaluationResult(
            instanceID: task.instanceID, patchIsNone: patch == nil, patchExists: hasPatch, patchSuccessfullyApplied: false,
            resolved: false, revertedPaths: reverted.sorted(), testMilliseconds: 0, overheadMilliseconds: 0, statuses: [:])
        result.applyMethod = log.split(separator: "\n").first { $0.hasPrefix(">>>>> Applied Patch (") }
            .map { String($0.dropFirst(">>>>> Applied Patch (".count).dropLast()) }
        result.patchSuccessfullyApplied = hasPatch && result.applyMethod != nil
        if run.timedOut {
            result.error = "the tests did not finish within \(Int(timeout)) s"
        } else if hasPatch && !result.patchSuccessfullyApplied {
            result.error = "patch failed to apply"
        } else if log.contains(">>>>> Test Patch Apply Failed") {
            result.error = "the test patch failed to apply: the task is broken"
        } else {
            let testOutput = Self.testOutput(of: log)
            let exitCode = log.split(separator: "\n").last { $0.hasPrefix(Self.exitCodePrefix) }
                .flatMap { Int32($0.dropFirst(Self.exitCodePrefix.count)) }
            result.testExitCode = exitCode
            let parser = LogParser(rawValue: task.logParser ?? "pytest") ?? .pytest
            let parsed = parser.parse(testOutput)
            result.statuses = parsed.statuses
            let grade = grade(parsed: parsed, failToPass: task.failToPass, passToPass: task.passToPass, testExitCode: exitCode)
            result.resolution = grade.resolution
            result.testsStatus = grade.testsStatus
            result.error = grade.error
            result.resolved = result.patchSuccessfullyApplied && grade.resolution == .full
            result.testMilliseconds = Self.testMilliseconds(log)
        }
        let elapsed = clock.now - started
        result.overheadMilliseconds = max(0, Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            - result.testMilliseconds)

        if let output {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            try Data(modelPatch.utf8).write(to: output.appendingPathComponent("patch.diff"))
            try Data(script.utf8).write(to: output.appendingPathComponent("eval.sh"))
            try Data(log.utf8).write(to: output.appendingPathComponent("test_output.txt"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(result.swebenchReport()).write(to: output.appendingPathComponent("report.json"))
        }
        return result
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

    /// The evaluation script, as SWE-bench's eval.sh lays it out: apply the model patch with
    /// fallbacks, restore the test files (and any test infrastructure the patch touched) to the
    /// base, apply the hidden tests, run them between the markers, print the exit code.
    static func script(base: String, modelPatch: String?, revert: [String], testPatch: String, testCommand: String) -> String {
        func heredoc(_ text: String, into path: String) -> String {
            var delimiter = "WARDEN_EOF"
            while text.contains(delimiter) { delimiter += "_" }
            let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
            return "cat > \(path) <<'\(delimiter)'\n\(body)\n\(delimiter)\n"
        }
        func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        // One stream, so the log's lines stay whole and in order.
        var script = "exec 2>&1\n"
        if let modelPatch {
            script += heredoc(modelPatch, into: "/tmp/warden-model.patch")
            script += """
                warden_applied=""
                if git apply --verbose /tmp/warden-model.patch; then warden_applied="git apply"
                else
                  git reset -q --hard; git clean -qfd
                  if git apply --verbose --3way /tmp/warden-model.patch; then warden_applied="git apply --3way"
                  else
                    git reset -q --hard; git clean -qfd
                    if patch --batch --fuzz=5 -p1 -i /tmp/warden-model.patch; then warden_applied="patch --fuzz=5"; fi
                  fi
                fi
                if [ -z "$warden_applied" ]; then echo '\(applyFailedMarker)'; exit 1; fi
                echo ">>>>> Applied Patch ($warden_applied)"

                """
        }
        for path in revert {
            script += "if git cat-file -e \(quote(base + ":" + path)) 2>/dev/null; then git checkout -q \(base) -- \(quote(path)); else rm -rf -- \(quote(path)); fi\n"
        }
        if !testPatch.isEmpty {
            script += heredoc(testPatch, into: "/tmp/warden-test.patch")
            script += "git apply --verbose /tmp/warden-test.patch || { echo '>>>>> Test Patch Apply Failed'; exit 1; }\n"
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

/// Paths a unified diff touches, and which of them are tests or test infrastructure.
public enum PatchPaths {
    public static func touched(by patch: String) -> [String] {
        var paths: [String] = []
        for line in patch.split(separator: "\n") {
            if line.hasPrefix("diff --git ") {
                // "diff --git a/X b/Y": the b/ side names the file after the change.
                if let range = line.range(of: " b/", options: .backwards) { paths.append(String(line[range.upperBound...])) }
                if let start = line.range(of: "diff --git a/"), let end = line.range(of: " b/", options: .backwards), start.upperBound <= end.lowerBound {
                    paths.append(String(line[start.upperBound..<end.lowerBound]))
                }
            } else if line.hasPrefix("+++ b/") || line.hasPrefix("--- a/") {
                paths.append(String(line.dropFirst(6)).split(separator: "\t").first.map(String.init) ?? "")
            }
        }
        var seen = Set<String>()
        return paths.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    /// Files a model's patch may not change for scoring: tests and what configures them.
    public static func isTestInfrastructure(_ path: String) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        guard let name = components.last else { return false }
        if ["conftest.py", "sitecustomize.py", "usercustomize.py", "pytest.ini", "tox.ini", "noxfile.py"].contains(name) { return true }
        if name.hasSuffix(".pth") { return true }
        if components.dropLast().contains(where: { ["tests", "test", "testing", "__tests__"].contains($0) }) { return true }
        let testNames = [("test_", ".py"), ("", "_test.py"), ("", "_test.go"), ("", ".test.js"), ("", ".spec.js"), ("", ".test.ts"), ("", ".spec.ts")]
        return testNames.contains { name.hasPrefix($0.0) && name.hasSuffix($0.1) && name.count > $0.0.count + $0.1.count - 1 }
    }
}
