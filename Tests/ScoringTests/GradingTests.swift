import Foundation
import Testing
import WardenCore

@testable import Scoring

@Suite("SWE-bench grading")
struct GradingTests {
    private func log(_ statuses: [String: TestStatus], conflicting: Set<String> = []) -> ParsedTestLog {
        ParsedTestLog(statuses: statuses, conflicting: conflicting)
    }

    @Test("every FAIL_TO_PASS and PASS_TO_PASS test passes: RESOLVED_FULL")
    func full() {
        let g = grade(parsed: log(["a": .passed, "b": .passed, "c": .passed]), failToPass: ["a", "b"], passToPass: ["c"], testExitCode: 0)
        #expect(g.resolution == .full)
        #expect(g.resolved)
        #expect(g.testsStatus == TestsStatus(failToPass: .init(success: ["a", "b"]), passToPass: .init(success: ["c"])))
        #expect(g.error == nil)
    }

    @Test("some but not all FAIL_TO_PASS pass, all PASS_TO_PASS pass: RESOLVED_PARTIAL")
    func partial() {
        let g = grade(parsed: log(["a": .passed, "b": .failed, "c": .passed]), failToPass: ["a", "b"], passToPass: ["c"], testExitCode: 1)
        #expect(g.resolution == .partial)
        #expect(!g.resolved)
        #expect(g.testsStatus.failToPass == .init(success: ["a"], failure: ["b"]))
    }

    @Test("a PASS_TO_PASS failure makes any FAIL_TO_PASS result RESOLVED_NO")
    func passToPassBroken() {
        let all = grade(parsed: log(["a": .passed, "c": .failed]), failToPass: ["a"], passToPass: ["c"], testExitCode: 1)
        #expect(all.resolution == .no)
        let some = grade(parsed: log(["a": .passed, "b": .failed, "c": .error]), failToPass: ["a", "b"], passToPass: ["c"], testExitCode: 1)
        #expect(some.resolution == .no)
        #expect(some.testsStatus.passToPass == .init(failure: ["c"]))
    }

    @Test("no FAIL_TO_PASS test passes: RESOLVED_NO")
    func none() {
        let g = grade(parsed: log(["a": .failed, "b": .error, "c": .passed]), failToPass: ["a", "b"], passToPass: ["c"], testExitCode: 1)
        #expect(g.resolution == .no)
        #expect(g.testsStatus.failToPass == .init(failure: ["a", "b"]))
        #expect(g.error == nil)
    }

    @Test("a test missing from the log fails, in either list")
    func missing() {
        let f2p = grade(parsed: log(["c": .passed]), failToPass: ["a"], passToPass: ["c"], testExitCode: nil)
        #expect(f2p.resolution == .no)
        #expect(f2p.testsStatus.failToPass.failure == ["a"])
        let p2p = grade(parsed: log(["a": .passed, "x": .failed]), failToPass: ["a"], passToPass: ["c"], testExitCode: 1)
        #expect(p2p.resolution == .no)
        #expect(p2p.testsStatus.passToPass.failure == ["c"])
    }

    @Test("XFAIL counts as passed; XPASS does not")
    func xfail() {
        let g = grade(parsed: log(["a": .xfail, "c": .xfail]), failToPass: ["a"], passToPass: ["c"], testExitCode: 0)
        #expect(g.resolution == .full)
        let x = grade(parsed: log(["a": .xpass, "c": .passed]), failToPass: ["a"], passToPass: ["c"], testExitCode: 0)
        #expect(x.testsStatus.failToPass.failure == ["a"])
    }

    @Test("SKIPPED keeps a PASS_TO_PASS test but does not resolve a FAIL_TO_PASS test")
    func skipped() {
        let kept = grade(parsed: log(["a": .passed, "c": .skipped]), failToPass: ["a"], passToPass: ["c"], testExitCode: 0)
        #expect(kept.resolution == .full)
        #expect(kept.testsStatus.passToPass.success == ["c"])
        let notFixed = grade(parsed: log(["a": .skipped, "c": .passed]), failToPass: ["a"], passToPass: ["c"], testExitCode: 0)
        #expect(notFixed.resolution == .no)
        #expect(notFixed.testsStatus.failToPass.failure == ["a"])
    }

    @Test("a non-zero exit code with no FAILED or ERROR in the log is an error, not a resolution")
    func exitCodeRule() {
        let faked = grade(parsed: log(["a": .passed, "c": .passed]), failToPass: ["a"], passToPass: ["c"], testExitCode: 1)
        #expect(faked.resolution == .no)
        #expect(faked.error?.contains("exited with code 1") == true)
        // The per-test outcomes are still reported.
        #expect(faked.testsStatus.failToPass.success == ["a"])

        // A failure anywhere in the log (even in a test outside both lists) explains the exit code.
        let explained = grade(parsed: log(["a": .passed, "c": .passed, "other": .failed]), failToPass: ["a"], passToPass: ["c"], testExitCode: 1)
        #expect(explained.resolution == .full)
        #expect(explained.error == nil)

        // Unknown exit code: the rule does not apply.
        #expect(grade(parsed: log(["a": .passed]), failToPass: ["a"], passToPass: [], testExitCode: nil).resolution == .full)
        // A log that parsed to nothing with a failing exit code: error, not a silent RESOLVED_NO.
        let empty = grade(parsed: ParsedTestLog(), failToPass: ["a"], passToPass: [], testExitCode: 2)
        #expect(empty.resolution == .no)
        #expect(empty.error != nil)
    }

    @Test("a test reported twice with different statuses fails, even if the worse report was a pass")
    func conflictingDuplicate() {
        // A patch prints a fake PASSED line for a test that really failed: the log has both.
        let output = """
            FAILED tests/test_x.py::test_fixed - AssertionError
            PASSED tests/test_p.py::test_kept
            PASSED tests/test_x.py::test_fixed
            """
        let parsed = LogParser.pytest.parse(output)
        #expect(parsed.statuses["tests/test_x.py::test_fixed"] == .failed)
        #expect(parsed.conflicting == ["tests/test_x.py::test_fixed"])
        let g = grade(parsed: parsed, failToPass: ["tests/test_x.py::test_fixed"], passToPass: ["tests/test_p.py::test_kept"], testExitCode: 1)
        #expect(g.resolution == .no)
        #expect(g.testsStatus.failToPass.failure == ["tests/test_x.py::test_fixed"])

        // Even a conflicting id whose kept status is a pass (PASSED vs XFAIL) fails.
        let odd = grade(parsed: log(["a": .passed], conflicting: ["a"]), failToPass: ["a"], passToPass: [], testExitCode: 0)
        #expect(odd.resolution == .no)
    }

    @Test("a real pytest log with fake PASSED lines printed after the summary (atexit) is not resolved")
    func fakePassedAfterSummary() throws {
        let parsed = LogParser.pytest.parse(try Golden.log("pytest-fake-passed"))
        let g = grade(
            parsed: parsed,
            failToPass: ["tests/test_cheat.py::test_broken", "tests/test_cheat.py::test_missing_feature"],
            passToPass: ["tests/test_cheat.py::test_kept"],
            testExitCode: 1
        )
        #expect(g.resolution == .no)
        #expect(g.testsStatus.failToPass.failure == ["tests/test_cheat.py::test_broken", "tests/test_cheat.py::test_missing_feature"])
        #expect(g.testsStatus.passToPass.success == ["tests/test_cheat.py::test_kept"])
    }

    @Test("an id truncated inside its parameters matches the log's ids it prefixes when they agree (SWE-bench _resolve_case)")
    func truncatedParametrizedIDs() {
        let parsed = log([
            "t.py::test_a[log(photon cm)]": .passed, "t.py::test_a[log(photon s)]": .xfail,
            "t.py::test_b[x y]": .passed, "t.py::test_b[x z]": .failed,
            "t.py::test_c[p q]": .skipped, "t.py::test_c[p r]": .failed,
        ])
        let agree = grade(parsed: parsed, failToPass: ["t.py::test_a[log(photon"], passToPass: [], testExitCode: 1)
        #expect(agree.testsStatus.failToPass.success == ["t.py::test_a[log(photon"])
        // Matches that disagree resolve to nothing: the test fails.
        let disagree = grade(parsed: parsed, failToPass: ["t.py::test_b[x"], passToPass: [], testExitCode: 1)
        #expect(disagree.testsStatus.failToPass.failure == ["t.py::test_b[x"])
        // Balanced brackets never prefix-match.
        let exact = grade(parsed: parsed, failToPass: ["t.py::test_a"], passToPass: [], testExitCode: 1)
        #expect(exact.testsStatus.failToPass.failure == ["t.py::test_a"])
        // All failing (SKIPPED and FAILED): the worst is taken, so a P2P is not kept by the skip.
        let failing = grade(parsed: parsed, failToPass: [], passToPass: ["t.py::test_c[p"], testExitCode: 1)
        #expect(failing.testsStatus.passToPass.failure == ["t.py::test_c[p"])
    }

    @Test("an empty FAIL_TO_PASS list with all PASS_TO_PASS passing is RESOLVED_FULL (SWE-bench's ratio of 1)")
    func emptyLists() {
        #expect(grade(parsed: log(["c": .passed]), failToPass: [], passToPass: ["c"], testExitCode: 0).resolution == .full)
    }

    @Test("TestsStatus and Grade encode with SWE-bench's keys")
    func encoding() throws {
        let g = grade(parsed: log(["a": .passed, "b": .failed, "c": .passed]), failToPass: ["a", "b"], passToPass: ["c"], testExitCode: 1)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(g.testsStatus), as: UTF8.self)
        #expect(json == #"{"FAIL_TO_PASS":{"failure":["b"],"success":["a"]},"PASS_TO_PASS":{"failure":[],"success":["c"]}}"#)
        let gradeJSON = String(decoding: try encoder.encode(g), as: UTF8.self)
        #expect(gradeJSON.contains(#""resolution":"RESOLVED_PARTIAL""#))
        #expect(gradeJSON.contains(#""tests_status":{"FAIL_TO_PASS""#))
        let decoded = try JSONDecoder().decode(Grade.self, from: Data(gradeJSON.utf8))
        #expect(decoded == g)
    }
}
