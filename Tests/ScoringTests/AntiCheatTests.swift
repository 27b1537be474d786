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

    @Test("cheating patches are undone and do not resolve the task", arguments: ["conftest", "tests", "sitecustomize"])
    func cheatsAreUndone(kind: String) async throws {
        let (task, repository, evaluator, scratch) = try fixture()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let patch = switch kind {
        case "conftest": Self.conftest
        case "tests": Self.editedTests
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
