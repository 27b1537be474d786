import Foundation
import Sandbox
import Scoring
@testable import Synth
import Tasks
import Testing
import WardenCore
import Workspace

/// The pipeline for real: a small Python repository, its tests in the tests jail, a suite written
/// to disk and scored by the evaluator.
@Suite("synth: keep rules, hidden tests, resume, bad input", .serialized)
struct SynthesizerTests {
    static let repository: [String: String] = [
        "calc/__init__.py": "",
        "calc/add.py": """
            def add_clamped(a, b, limit=100):
                total = a + b
                if total > limit:
                    return limit
                return total


            def unused(x):
                return x - 1
            """ + "\n",
        "calc/parity.py": """
            def parity(n):
                if n % 2 == 0:
                    return "even"
                return "odd"
            """ + "\n",
        "tests/test_add.py": """
            from calc.add import add_clamped

            def test_small():
                assert add_clamped(2, 3) == 5

            def test_clamped():
                assert add_clamped(60, 70) == 100
            """ + "\n",
        "tests/test_parity.py": """
            from calc.parity import parity

            def test_even():
                assert parity(4) == "even"

            def test_odd():
                assert parity(3) == "odd"
            """ + "\n",
    ]

    func source(_ files: [String: String] = repository, scratch: URL) throws -> SynthSource {
        let folder = scratch.appendingPathComponent("calc-repo")
        try SynthFixtures.write(files, in: folder)
        return try SynthSource.prepare(folder.path, work: scratch.appendingPathComponent("work"))
    }

    func mutation(_ source: SynthSource, file: String, replacing text: String, with replacement: String, kind: String = "test",
                  function: String) throws -> Mutation {
        let contents = try String(contentsOf: source.checkout.appendingPathComponent(file), encoding: .utf8)
        let range = try #require(contents.range(of: text))
        let start = contents.utf8.distance(from: contents.startIndex, to: range.lowerBound)
        return Mutation(file: file, kind: kind, function: function, line: 1, start: start, end: start + text.utf8.count, replacement: replacement)
    }

    @Test("keep rules: a real bug is kept with its FAIL_TO_PASS and PASS_TO_PASS; a mutant no test notices is dropped as equivalent; one that breaks every test, or never ends, is dropped")
    func keepRules() async throws {
        let scratch = try SynthFixtures.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = try source(scratch: scratch)
        let worker = try SuiteWorker(source: source, work: scratch.appendingPathComponent("worker"), profile: try SynthFixtures.profile())
        let baseline = Baseline(passing: ["tests/test_add.py::test_clamped", "tests/test_add.py::test_small", "tests/test_parity.py::test_even",
                                          "tests/test_parity.py::test_odd"], flaky: [], files: [:], slowestSeconds: 1)
        let check = Validation(baseline: baseline, timeout: 60, command: source.command())

        let bug = try mutation(source, file: "calc/add.py", replacing: "total > limit", with: "total < limit", function: "add_clamped")
        let kept = try await check.judge([bug], on: worker)
        #expect(kept.dropReason == nil)
        #expect(kept.failToPass == ["tests/test_add.py::test_clamped", "tests/test_add.py::test_small"])
        #expect(kept.passToPass == ["tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"])
        #expect(kept.output.contains("test_small"))
        let equivalent = try mutation(source, file: "calc/add.py", replacing: "x - 1", with: "x - 2", function: "unused")
        let verdict = try await check.judge([equivalent], on: worker)
        #expect(verdict.dropReason == Validation.reasons.equivalent)
        let everything = Mutation(file: "calc/__init__.py", kind: "test", function: "<module>", line: 1, start: 0, end: 0, replacement: "raise SystemExit(3)\n")
        #expect(try await check.judge([everything], on: worker).dropReason == Validation.reasons.noPassToPass)

        let clampBug = try mutation(source, file: "calc/add.py", replacing: "return limit", with: "return limit + 1", function: "add_clamped")
        let clamp = try await check.judge([clampBug], on: worker)
        #expect(clamp.failToPass == ["tests/test_add.py::test_clamped"])
        #expect(clamp.passToPass == ["tests/test_add.py::test_small", "tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"])
        // A mutant that never returns is dropped at the timeout, and the jail serves the next run.
        let hang = try mutation(source, file: "calc/parity.py", replacing: "return \"odd\"", with: "while True: pass", function: "parity")
        let hanging = Validation(baseline: baseline, timeout: 5, command: source.command())
        #expect(try await hanging.judge([hang], on: worker).dropReason == Validation.reasons.timeout)
        // The worker put the file back: the passing state runs clean again.
        let clean = try await worker.run([], command: source.command(), timeout: 60)
        #expect(clean.statuses.values.allSatisfy { $0 == .passed } && clean.statuses.count == 4)

        // Two mutants failing the same tests from the same function: the second is equivalent.
        let tally = Tally(configuration: SynthConfiguration(output: scratch), previous: [], progress: { _ in })
        let first = CandidateRecord(mutations: [clampBug], outcome: "kept", failToPass: clamp.failToPass, passToPass: clamp.passToPass)
        let offByOne = try mutation(source, file: "calc/add.py", replacing: "return limit", with: "return limit - 1", function: "add_clamped")
        let again = try await check.judge([offByOne], on: worker)
        let second = CandidateRecord(mutations: [offByOne], outcome: "kept", failToPass: again.failToPass, passToPass: again.passToPass)
        #expect(await tally.equivalence(first) == nil)
        #expect(await tally.equivalence(second) == Validation.reasons.duplicate)
    }

    func synthesize(_ source: SynthSource, out: URL, work: URL, maxTasks: Int = 3, seed: UInt64 = 1, keepTests: Bool = false) async throws -> SynthSummary {
        let synthesizer = Synthesizer(source: source, configuration: SynthConfiguration(output: out, maxTasks: maxTasks, seed: seed, workers: 2, keepTests: keepTests),
                                      profile: try SynthFixtures.profile())
        return try await synthesizer.run(work: work)
    }

    @Test("resume with a torn candidate log keeps the first run's tasks and tries nothing twice; other settings are refused; the suite hides the failing tests' files (--keep-tests leaves them), gold resolves, no patch does not")
    func resume() async throws {
        let scratch = try SynthFixtures.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = try source(scratch: scratch)
        let out = scratch.appendingPathComponent("suite")
        let first = try await synthesize(source, out: out, work: scratch.appendingPathComponent("one"), maxTasks: 1)
        #expect(first.kept == 1)
        let firstTasks = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
        let log = out.appendingPathComponent(".synth/candidates.jsonl")
        let rows = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").count
        // A kill in the middle of a write leaves half a row.
        let handle = try FileHandle(forWritingTo: log)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"mutations":[{"file":"calc"#.utf8))
        try handle.close()

        let second = try await synthesize(source, out: out, work: scratch.appendingPathComponent("two"), maxTasks: 3)
        #expect(second.kept == 3 && second.keptTwoLocation == 1)
        let secondTasks = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
        #expect(Set(firstTasks).isSubset(of: Set(secondTasks)) && secondTasks.count == 3)
        let records = try Synthesizer.records(out.appendingPathComponent(".synth"))
        #expect(Set(records.map(\.key)).count == records.count, "a candidate was tried twice")
        #expect(records.count > rows)

        await #expect(throws: SynthRefusal.self) {
            _ = try await synthesize(source, out: out, work: scratch.appendingPathComponent("three"), seed: 2)
        }
        // Every drop is recorded with its reason, and what was kept is what the summary counts.
        #expect(records.allSatisfy { $0.outcome == "kept" || $0.outcome.hasPrefix("equivalent") || $0.outcome.hasPrefix("no test") || $0.outcome.hasPrefix("the suite") })
        #expect(records.filter { $0.outcome == "kept" }.count == 3)
        try await checkSuite(out, scratch: scratch)

        let kept = scratch.appendingPathComponent("kept")
        _ = try await synthesize(source, out: kept, work: scratch.appendingPathComponent("run-kept"), maxTasks: 1, keepTests: true)
        let keptSuite = try TaskSuite.load(kept.path, cache: scratch.appendingPathComponent("cache-kept"))
        let task = try #require(keptSuite.tasks.first)
        #expect((task.instance.testPatch ?? "").isEmpty)
        #expect(FileManager.default.fileExists(atPath: kept.appendingPathComponent(task.instance.instanceID + "/repo/tests/test_add.py").path))
    }

    /// The failing tests' files are hidden and come back as the test patch; gold resolves, no patch does not.
    func checkSuite(_ out: URL, scratch: URL) async throws {
        let suite = try TaskSuite.load(out.path, cache: scratch.appendingPathComponent("cache"))
        #expect(suite.problems.isEmpty && suite.tasks.count == 3)
        let evaluator = Evaluator(profile: try SynthFixtures.profile(), workRoot: scratch)
        for task in suite.tasks {
            let instance = task.instance
            let folder = out.appendingPathComponent(instance.instanceID)
            let hidden = Set(instance.failToPass.compactMap { $0.components(separatedBy: "::").first })
            for file in hidden {
                #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("repo/\(file)").path), "\(file) is visible")
                #expect(instance.testPatch?.contains("+++ b/\(file)") == true)
            }
            #expect(!(instance.goldPatch ?? "").contains("tests/"))
            #expect(!instance.problemStatement.contains("calc/add.py") && !instance.problemStatement.contains("calc/parity.py"))
            #expect(instance.extra["mutation_kind"] != nil)
            let gold = try await evaluator.evaluate(instance, repository: task.repository, patch: instance.goldPatch)
            #expect(gold.resolved, "\(instance.instanceID): \(gold.error ?? "") \(gold.statuses)")
        }
        let first = try #require(suite.tasks.first)
        let empty = try await evaluator.evaluate(first.instance, repository: first.repository, patch: nil)
        #expect(!empty.resolved && empty.testsStatus?.failToPass.failure == first.instance.failToPass)
    }

    @Test("bad input: a failing suite is refused with the failing tests named; a folder that is not there, or has no tests, is an error")
    func badInput() async throws {
        let scratch = try SynthFixtures.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var broken = Self.repository
        broken["tests/test_parity.py", default: ""] += "\ndef test_wrong():\n    assert parity(5) == \"even\"\n"
        let source = try source(broken, scratch: scratch)
        do {
            _ = try await synthesize(source, out: scratch.appendingPathComponent("suite"), work: scratch.appendingPathComponent("run"))
            Issue.record("a failing suite was accepted")
        } catch let refusal as SynthRefusal {
            #expect(refusal.description.contains("does not pass") && refusal.description.contains("tests/test_parity.py::test_wrong"))
        }
        #expect(throws: WardenError.self) { try SynthSource.prepare(scratch.appendingPathComponent("missing").path, work: scratch) }
        let empty = scratch.appendingPathComponent("no-tests")
        try SynthFixtures.write(["README.md": "nothing to test\n"], in: empty)
        #expect(throws: WardenError.self) { try SynthSource.prepare(empty.path, work: scratch.appendingPathComponent("w2")) }
    }
}
