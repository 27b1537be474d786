import Foundation
import Sandbox
import Scoring
import Tasks
import Testing
import WardenCore

/// A patch must not be able to fake a pass: each cheat below leaves calcly-1's bug in place.
@Suite("Scoring cannot be cheated")
struct AntiCheatTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let failing = "tests/test_eval.py::test_power_is_right_associative"

    static let conftest = """
        diff --git a/conftest.py b/conftest.py
        new file mode 100644
        --- /dev/null
        +++ b/conftest.py
        @@ -0,0 +1,8 @@
        +import pytest
        +
        +
        +@pytest.hookimpl(hookwrapper=True)
        +def pytest_runtest_makereport(item, call):
        +    outcome = yield
        +    report = outcome.get_result()
        +    report.outcome = "passed"

        """

    static let editedTests = """
        diff --git a/tests/test_eval.py b/tests/test_eval.py
        --- a/tests/test_eval.py
        +++ b/tests/test_eval.py
        @@ -78,3 +78,7 @@ def test_unknown_name():
         def test_syntax_errors(expr):
             with pytest.raises(CalcSyntaxError):
                 evaluate(expr)
        +
        +
        +def test_power_is_right_associative():
        +    assert True

        """

    static let sitecustomize = """
        diff --git a/sitecustomize.py b/sitecustomize.py
        new file mode 100644
        --- /dev/null
        +++ b/sitecustomize.py
        @@ -0,0 +1,2 @@
        +import os
        +os.environ["PYTEST_ADDOPTS"] = "-p no:cacheprovider -p conftest_cheat"
        diff --git a/conftest_cheat.py b/conftest_cheat.py
        new file mode 100644
        --- /dev/null
        +++ b/conftest_cheat.py
        @@ -0,0 +1,7 @@
        +import pytest
        +
        +
        +@pytest.hookimpl(hookwrapper=True)
        +def pytest_runtest_makereport(item, call):
        +    outcome = yield
        +    outcome.get_result().outcome = "passed"

        """

    /// Prints PASSED lines for the failing tests when the interpreter exits, after pytest's summary.
    static func fakePassedLines(firstLine: String) -> String {
        """
        diff --git a/calcly/__init__.py b/calcly/__init__.py
        --- a/calcly/__init__.py
        +++ b/calcly/__init__.py
        @@ -1 +1,5 @@
        +import atexit
        +
        +atexit.register(print, "PASSED \(failing)")
        +atexit.register(print, "PASSED tests/test_eval.py::test_power_chain_with_unary")
         \(firstLine)

        """
    }

    /// The conftest cheat with C-quoted names, which `git apply` reads like plain ones.
    static let quotedConftest = conftest
        .replacingOccurrences(of: "diff --git a/conftest.py b/conftest.py", with: "diff --git \"a/conftest.py\" \"b/conftest.py\"")
        .replacingOccurrences(of: "+++ b/conftest.py", with: "+++ \"b/conftest.py\"")

    /// The conftest cheat as a traditional diff with another prefix; `git apply -p1` takes it.
    static let traditionalConftest = conftest
        .replacingOccurrences(of: "diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n", with: "")
        .replacingOccurrences(of: "+++ b/conftest.py", with: "+++ x/conftest.py")

    /// The conftest cheat one directory down, next to the tests it rigs.
    static let subdirectoryConftest = conftest.replacingOccurrences(of: "a/conftest.py", with: "a/tests/conftest.py")
        .replacingOccurrences(of: "b/conftest.py", with: "b/tests/conftest.py")

    /// A root pytest.py that runs the real pytest with a pass-forcing plugin: `python3 -m pytest`
    /// without `-P` finds it first.
    static let shadowedRunner = """
        diff --git a/pytest.py b/pytest.py
        new file mode 100644
        --- /dev/null
        +++ b/pytest.py
        @@ -0,0 +1,20 @@
        +import os
        +import sys
        +
        +here = os.path.dirname(os.path.abspath(__file__))
        +sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        +sys.modules.pop("pytest", None)
        +import pytest as real
        +
        +sys.path.append(here)
        +
        +
        +class Cheat:
        +    @real.hookimpl(hookwrapper=True)
        +    def pytest_runtest_makereport(self, item, call):
        +        outcome = yield
        +        outcome.get_result().outcome = "passed"
        +
        +
        +if __name__ == "__main__":
        +    sys.exit(real.main(plugins=[Cheat()]))

        """

    /// A pytest section in a new pyproject.toml that loads a pass-forcing plugin from the package.
    static let pyprojectSection = """
        diff --git a/pyproject.toml b/pyproject.toml
        new file mode 100644
        --- /dev/null
        +++ b/pyproject.toml
        @@ -0,0 +1,5 @@
        +[project]
        +name = "calcly"
        +
        +[tool.pytest.ini_options]
        +addopts = "-p calcly.speedups"
        diff --git a/calcly/speedups.py b/calcly/speedups.py
        new file mode 100644
        --- /dev/null
        +++ b/calcly/speedups.py
        @@ -0,0 +1,7 @@
        +import pytest
        +
        +
        +@pytest.hookimpl(hookwrapper=True)
        +def pytest_runtest_makereport(item, call):
        +    outcome = yield
        +    outcome.get_result().outcome = "passed"

        """

    /// A hook planted in .git/ as a traditional diff: `git apply` refuses it, GNU patch would not.
    static let gitHook = """
        --- /dev/null
        +++ x/.git/hooks/post-checkout
        @@ -0,0 +1,2 @@
        +#!/bin/sh
        +printf 'import pytest\\n' > conftest.py

        """ + conftest

    /// Writes a fake pytest summary, every task test PASSED, to the script's own output when the
    /// package is imported, then exits 0 before pytest runs a test.
    static func forgedSummary(firstLine: String, ids: [String]) -> String {
        // pytest captures fd 1 while it imports; its saved copy of the real stdout is another fd
        // on the same pipe, so the forgery writes to every pipe the process holds.
        let summary = ["=========================== short test summary info ============================"]
            + ids.map { "PASSED \($0)" } + ["============================== \(ids.count) passed in 0.05s =============================="]
        let text = summary.map { $0 + "\\n" }.joined()
        let lines = ["import os as _os, stat as _stat", "", "for _fd in range(256):", "    try:",
                     "        if _stat.S_ISFIFO(_os.fstat(_fd).st_mode):", "            _os.write(_fd, b\"\(text)\")",
                     "    except OSError:", "        pass", "_os._exit(0)"]
        return "diff --git a/calcly/__init__.py b/calcly/__init__.py\n--- a/calcly/__init__.py\n+++ b/calcly/__init__.py\n"
            + "@@ -1 +1,\(lines.count + 1) @@\n" + lines.map { "+" + $0 + "\n" }.joined() + " \(firstLine)\n"
    }

    func fixture() throws -> (TaskInstance, URL, Evaluator, URL) {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-cheat-\(UUID().uuidString)")
        let suite = try TaskSuite.load(Self.root.appendingPathComponent("Tasks/starter/warden__calcly-1").path,
                                       cache: scratch.appendingPathComponent("repos"))
        let task = try #require(suite.tasks.first)
        let profile = try SandboxProfile.load(Self.root.appendingPathComponent("Sandboxes/tests.json").path)
        return (task.instance, task.repository, Evaluator(profile: profile, workRoot: scratch), scratch)
    }

    /// The first line of calcly/__init__.py, which the fake-PASSED patch prepends to.
    func initFirstLine() throws -> String {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Tasks/starter/warden__calcly-1/repo/calcly/__init__.py"), encoding: .utf8)
        return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }

    @Test("the conftest hook really fakes passes when it comes with the tests")
    func conftestCheatIsReal() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var rigged = task
        rigged.testPatch = (task.testPatch ?? "") + Self.conftest
        let result = try await evaluator.evaluate(rigged, repository: repository, patch: nil)
        #expect(result.resolution == .full)  // so the next tests would pass if scoring let the patch keep it
    }

    @Test("the pyproject.toml pytest section really fakes passes when it comes with the tests")
    func pyprojectCheatIsReal() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var rigged = task
        rigged.testPatch = (task.testPatch ?? "") + Self.pyprojectSection
        rigged.testCommand = task.testCommand?.replacingOccurrences(of: "{test_files}", with: "tests/test_eval.py")
        let output = scratch.appendingPathComponent("out")
        let result = try await evaluator.evaluate(rigged, repository: repository, patch: nil, output: output)
        let log = try String(contentsOf: output.appendingPathComponent("test_output.txt"), encoding: .utf8)
        #expect(result.resolution == .full, "\(log.suffix(3000))")
    }

    @Test("a root pytest.py really replaces the runner when the checkout comes first on sys.path")
    func shadowedRunnerIsReal() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var rigged = task
        rigged.testPatch = (task.testPatch ?? "") + Self.shadowedRunner
        let command = task.testCommand?.replacingOccurrences(of: "{test_files}", with: "tests/test_eval.py") ?? ""
        rigged.testCommand = "env -u PYTHONSAFEPATH " + command
        let output = scratch.appendingPathComponent("out")
        let unsafe = try await evaluator.evaluate(rigged, repository: repository, patch: nil, output: output)
        let log = try String(contentsOf: output.appendingPathComponent("test_output.txt"), encoding: .utf8)
        #expect(unsafe.resolution == .full, "\(log.suffix(3000))")
        // Scoring's own command keeps the checkout off the front of sys.path: the same file is inert.
        rigged.testCommand = command
        #expect(try await evaluator.evaluate(rigged, repository: repository, patch: nil).resolution == .no)
    }

    @Test("cheating patches are undone and do not resolve the task",
          arguments: ["conftest", "tests", "sitecustomize", "quoted", "traditional", "subdirectory", "runner", "pyproject"])
    func cheatsAreUndone(kind: String) async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let patch = switch kind {
        case "conftest": Self.conftest
        case "tests": Self.editedTests
        case "quoted": Self.quotedConftest
        case "traditional": Self.traditionalConftest
        case "subdirectory": Self.subdirectoryConftest
        case "runner": Self.shadowedRunner
        case "pyproject": Self.pyprojectSection
        default: Self.sitecustomize
        }
        let result = try await evaluator.evaluate(task, repository: repository, patch: patch)
        #expect(result.patchSuccessfullyApplied)
        #expect(!result.resolved)
        #expect(result.testsStatus?.failToPass.failure == [Self.failing])
        #expect(!result.revertedPaths.isEmpty)
    }

    @Test("printing fake PASSED lines does not resolve the task")
    func fakePassedLines() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let full = Self.fakePassedLines(firstLine: try initFirstLine())
        let result = try await evaluator.evaluate(task, repository: repository, patch: full)
        #expect(result.patchSuccessfullyApplied, "\(result.error ?? "")")
        #expect(!result.resolved)
        #expect(result.testsStatus?.failToPass.failure == [Self.failing])
    }

    @Test("a pytest section is restored alone: the rest of pyproject.toml keeps the patch's change")
    func pyprojectKeepsOtherSections() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("out")
        _ = try await evaluator.evaluate(task, repository: repository, patch: Self.pyprojectSection, output: output)
        let log = try String(contentsOf: output.appendingPathComponent("test_output.txt"), encoding: .utf8)
        #expect(log.contains(">>>>> Restored to base: pyproject.toml"))
        #expect(!log.contains("calcly.speedups"))
        let restored = TestInfrastructure.ConfigSections.pyprojectToml.restoringSections(
            of: "[project]\nname = \"calcly\"\n\n[tool.pytest.ini_options]\naddopts = \"-p x\"\n\n[tool.black]\nline-length = 100\n",
            from: "[project]\nname = \"calcly\"\n\n[tool.black]\nline-length = 88\n")
        #expect(restored == "[project]\nname = \"calcly\"\n\n[tool.black]\nline-length = 100\n")
        // A dotted key or an escaped name elsewhere cannot be separated safely: the whole file goes back.
        #expect(TestInfrastructure.ConfigSections.pyprojectToml.restoringSections(
            of: "[tool]\n\"\\u0070ytest\".ini_options.addopts = \"-p x\"\n", from: "") == nil)
    }

    @Test("a patch into .git/ is refused before anything applies it")
    func gitDirectoryPatchIsRefused() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let result = try await evaluator.evaluate(task, repository: repository, patch: Self.gitHook)
        #expect(!result.patchSuccessfullyApplied)
        #expect(!result.resolved)
        #expect(result.error?.contains(".git/") == true, "\(result.error ?? "")")
    }

    /// Scoring that throws is an `env_error`, which trainers drop: a patch must never be able to
    /// make the grader fail instead of grading it.
    @Test("a patch nesting directories past libgit2's 100 levels is refused and graded, not a scoring failure")
    func overDeepPatchIsGraded() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let deep = Array(repeating: "d", count: 110).joined(separator: "/") + "/leaf"
        let patch = (task.goldPatch ?? "") + "diff --git a/\(deep) b/\(deep)\nnew file mode 100644\n--- /dev/null\n+++ b/\(deep)\n@@ -0,0 +1 @@\n+x\n"
        let result = try await evaluator.evaluate(task, repository: repository, patch: patch)
        #expect(!result.resolved)
        #expect(result.error?.contains("patch refused") == true, "\(result.error ?? "")")
    }

    @Test("refused paths: absolute, .., quoted .git, through a symlink the patch creates")
    func unsafeNamesAreRefused() throws {
        let here = URL(fileURLWithPath: NSTemporaryDirectory())
        for patch in ["--- /dev/null\n+++ /etc/x\n@@ -0,0 +1 @@\n+x\n",
                      "--- /dev/null\n+++ b/../x\n@@ -0,0 +1 @@\n+x\n",
                      "diff --git \"a/.git/config\" \"b/.git/config\"\n--- \"a/.git/config\"\n+++ \"b/.git/config\"\n",
                      "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/tmp\n\\ No newline at end of file\n"
                        + "--- /dev/null\n+++ b/l/x\n@@ -0,0 +1 @@\n+x\n"] {
            #expect(PatchPaths.refusal(for: PatchPaths.named(by: patch), in: here) != nil, "\(patch)")
        }
        // A removed "-- x" line inside a hunk is not a header.
        let sql = "--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1 @@\n--- /etc/passwd\n keep\n"
        #expect(PatchPaths.refusal(for: PatchPaths.named(by: sql), in: here) == nil)
    }

    @Test("a forged summary printed by the code under test, exit code 0, does not resolve the task")
    func forgedSummary() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("out")
        let patch = Self.forgedSummary(firstLine: try initFirstLine(), ids: task.failToPass + task.passToPass)
        let result = try await evaluator.evaluate(task, repository: repository, patch: patch, output: output)
        #expect(result.patchSuccessfullyApplied)
        #expect(result.testExitCode == 0)
        #expect(!result.resolved)
        // The forgery is real: graded from the log alone, as SWE-bench does, it resolves.
        let log = try String(contentsOf: output.appendingPathComponent("test_output.txt"), encoding: .utf8)
        let logOnly = grade(parsed: LogParser.pytest.parse(log), failToPass: task.failToPass, passToPass: task.passToPass, testExitCode: 0)
        #expect(logOnly.resolution == .full)
    }

    @Test("a log longer than the profile's head and tail is read whole: results in its middle count")
    func longLogIsReadWhole() async throws {
        let (task, repository, standard, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var profile = standard.profile
        profile.output = .init(headBytes: 4096, tailBytes: 4096)
        let evaluator = Evaluator(profile: profile, workRoot: scratch)
        var noisy = task
        // pytest's summary ends up 200 KB before the end, far past the 4 KB head and tail kept in memory.
        noisy.testCommand = (task.testCommand ?? "") + "; python3 -c \"import sys; sys.stdout.write(('filler ' * 15 + '\\n') * 2000)\""
        let result = try await evaluator.evaluate(noisy, repository: repository, patch: task.goldPatch)
        #expect(result.resolved, "\(result.error ?? "")")
    }

    @Test("the gold patch still resolves under the same rules")
    func goldResolves() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let result = try await evaluator.evaluate(task, repository: repository, patch: task.goldPatch)
        #expect(result.resolved)
        #expect(result.applyMethod == "git apply")
        #expect(result.revertedPaths.isEmpty)
    }

    @Test("a patch that does not apply is reported as such")
    func brokenPatch() async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let broken = "diff --git a/calcly/parser.py b/calcly/parser.py\n--- a/calcly/parser.py\n+++ b/calcly/parser.py\n@@ -1,3 +1,3 @@\n-this line is not there\n+nor this\n context\n"
        let result = try await evaluator.evaluate(task, repository: repository, patch: broken)
        #expect(!result.patchSuccessfullyApplied)
        #expect(!result.resolved)
        #expect(result.error == "patch failed to apply")
    }
}
