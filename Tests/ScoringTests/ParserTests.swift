import Foundation
import Testing
import WardenCore

@testable import Scoring

/// Cases the golden logs do not cover: SWE-bench compatibility details and logs that try to fake results.
@Suite("Log parsers")
struct ParserTests {
    @Test("pytest: SWE-bench's second-token id, plus the full parametrized id")
    func pytestSWEBenchIDs() {
        let parsed = LogParser.pytest.parse("""
            PASSED tests/t.py::test_p[a b]
            FAILED tests/t.py::test_q[x - y] - AssertionError: no - really
            XFAIL tests/t.py::test_r - reason
            SKIPPED [2] tests/t.py:10: unconditional skip
            PASSEDtests/t.py::glued
              PASSED tests/t.py::indented
            """)
        #expect(parsed.statuses == [
            "tests/t.py::test_p[a": .passed, "tests/t.py::test_p[a b]": .passed,
            "tests/t.py::test_q[x": .failed, "tests/t.py::test_q[x - y]": .failed,
            "tests/t.py::test_r": .xfail,
        ])
    }

    @Test("pytest: with a summary section, status lines outside it add nothing but flag contradictions")
    func pytestSummarySection() {
        let parsed = LogParser.pytest.parse("""
            PASSED t.py::early_fake
            ============ short test summary info ============
            PASSED t.py::a
            FAILED t.py::b - boom
            ============ 1 failed, 1 passed in 0.1s ============
            PASSED t.py::b
            PASSED t.py::a
            """)
        #expect(parsed.statuses == ["t.py::a": .passed, "t.py::b": .failed])
        #expect(parsed.conflicting == ["t.py::b"])
    }

    @Test("ANSI colour codes are stripped before parsing")
    func ansi() {
        let line = "\u{1B}[32mPASSED\u{1B}[0m tests/t.py::\u{1B}[1mtest_a\u{1B}[0m\n\u{1B}]0;title\u{07}ok 1 - colored\r\n"
        #expect(LogParser.pytest.parse(line).statuses == ["tests/t.py::test_a": .passed])
        #expect(LogParser.tap.parse(line).statuses == ["colored": .passed])
    }

    @Test("unittest: status pushed to a later line by test output; a fake ok conflicts with the report")
    func unittestOutput() {
        let parsed = LogParser.unittest.parse("""
            test_a (m.C.test_a) ... printing things
            ok
            test_b (m.C.test_b) ... ok
            test_c (m.C) ... FAIL

            ======================================================================
            FAIL: test_b (m.C.test_b)
            ----------------------------------------------------------------------
            """)
        #expect(parsed.statuses == ["test_a (m.C.test_a)": .passed, "test_b (m.C.test_b)": .failed, "test_c (m.C)": .failed])
        #expect(parsed.conflicting == ["test_b (m.C.test_b)"])
    }

    @Test("cargo: status on its own line after the test's output")
    func cargoSplitLine() {
        let parsed = LogParser.cargo.parse("test a::b ... noise from the test\nok\ntest c ... FAILED\ntest d ... ignored, slow\n")
        #expect(parsed.statuses == ["a::b": .passed, "c": .failed, "d": .skipped])
    }

    @Test("go -v: a result-like line with trailing text is not a result")
    func goFakeLine() {
        let parsed = LogParser.gotest.parse("--- FAIL: TestA (0.00s) but not really\n    --- PASS: TestB/sub_1 (1.25s)\n--- SKIP: TestC (0.00s)\n")
        #expect(parsed.statuses == ["TestB/sub_1": .passed, "TestC": .skipped])
    }

    @Test("TAP: result lines inside YAML blocks and after Bail out! do not count")
    func tapYAMLAndBailOut() {
        let parsed = LogParser.tap.parse("""
            not ok 1 - real failure
              ---
              message: |
                ok 1 - real failure
              ...
            ok 2 - fine # skip: reason
            Bail out! stop
            ok 3 - after bail out
            """)
        #expect(parsed.statuses == ["real failure": .failed, "fine": .skipped])
        #expect(parsed.conflicting.isEmpty)
    }

    @Test("swift test: XCTest on Apple platforms and Swift Testing raw identifiers")
    func swiftTestVariants() {
        let parsed = LogParser.xctest.parse("""
            Test Case '-[TinyTests.ArithmeticTests testAdd]' passed (0.001 seconds).
            Test Case '-[TinyTests.ArithmeticTests testSub]' failed (0.002 seconds).
            􀟈 Test "With \\"quotes\\"" passed after 0.001 seconds.
            ✔ Test `adds two numbers`() passed after 0.001 seconds.
            ✘ Test run with 3 tests failed after 0.003 seconds with 1 issue.
            """)
        #expect(parsed.statuses == [
            "TinyTests.ArithmeticTests.testAdd": .passed, "TinyTests.ArithmeticTests.testSub": .failed,
            #"With "quotes""#: .passed, "`adds two numbers`()": .passed,
        ])
    }

    @Test("JUnit: generic XML with a failure and an error, surrounded by other output")
    func junitGeneric() {
        let parsed = LogParser.junit.parse("""
            building...
            <?xml version="1.0"?>
            <testsuites><testsuite name="s">
              <testcase classname="com.ex.FooTest" name="ok"/>
              <testcase classname="com.ex.FooTest" name="bad"><failure message="x"/></testcase>
              <testcase classname="com.ex.FooTest" name="worse"><failure/><error/></testcase>
              <testcase classname="com.ex.FooTest" name="skip"><skipped/></testcase>
            </testsuite></testsuites>
            <?xml version="1.0"?>
            <testsuite name="t"><testcase name="bare"/></testsuite>
            done
            """)
        #expect(parsed.statuses == [
            "com.ex.FooTest.ok": .passed, "com.ex.FooTest.bad": .failed, "com.ex.FooTest.worse": .error,
            "com.ex.FooTest.skip": .skipped, "bare": .passed,
        ])
    }

    @Test("garbage or empty logs parse to nothing for every parser")
    func garbage() {
        for parser in LogParser.allCases {
            #expect(parser.parse("").statuses.isEmpty)
            #expect(parser.parse("random text\n<not xml\n{\"Action\": 1}\n").statuses.isEmpty, "\(parser)")
        }
    }

    @Test("a repeated report with the same status is not a conflict")
    func sameStatusTwice() {
        var parsed = ParsedTestLog()
        parsed.record("a", .passed)
        parsed.record("a", .passed)
        parsed.record("b", .error)
        parsed.record("b", .failed)
        #expect(parsed.conflicting == ["b"])
        #expect(parsed.statuses == ["a": .passed, "b": .error])
    }
}

@Suite("Log parser scale")
struct ParserScaleTests {
    @Test("a 20,000-test log parses quickly for every line-based parser")
    func largeLogs() {
        let count = 20_000
        let logs: [(LogParser, String)] = [
            (.pytest, "=== short test summary info ===\n" + (0..<count).map { "PASSED t.py::test_\($0)[a b]" }.joined(separator: "\n")),
            (.unittest, (0..<count).map { "test_\($0) (m.C.test_\($0)) ... ok" }.joined(separator: "\n")),
            (.gotest, (0..<count).map { "    --- PASS: TestX/case_\($0) (0.00s)" }.joined(separator: "\n")),
            (.cargo, (0..<count).map { "test m::t\($0) ... ok" }.joined(separator: "\n")),
            (.tap, (0..<count).map { "    ok \($0) - case \($0)" }.joined(separator: "\n") + "\nok 1 - parent"),
            (.xctest, (0..<count).map { "Test Case 'C.test\($0)' passed (0.001 seconds)" }.joined(separator: "\n")),
        ]
        for (parser, log) in logs {
            let start = ContinuousClock.now
            let parsed = parser.parse(log)
            let elapsed = ContinuousClock.now - start
            #expect(parsed.statuses.count >= count, "\(parser)")
            #expect(elapsed < .seconds(10), "\(parser) took \(elapsed)")
        }
    }
}
