import Foundation
import Sandbox
import Tasks
import Testing
import Traces
import WardenCore

/// The tracer run for real: `warden_trace.py` inside the tests jail, over real checkouts.
@Suite("warden trace", .serialized)
struct TracerTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    static let failing = "tests/test_eval.py::test_power_is_right_associative"

    func tracer() throws -> (Tracer, URL) {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-trace-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let profile = try SandboxProfile.load(Self.root.appendingPathComponent("Sandboxes/tests.json").path)
        return (Tracer(profile: profile, workRoot: scratch), scratch)
    }

    func calcly(scratch: URL) throws -> SuiteTask {
        let suite = try TaskSuite.load(Self.root.appendingPathComponent("Tasks/starter/warden__calcly-1").path,
                                       cache: scratch.appendingPathComponent("repos"))
        return try #require(suite.tasks.first)
    }

    @Test("counting the r's in strawberry: a call, a line per loop step with the counter, the return of 3, CWM text as the golden file")
    func strawberry() async throws {
        let (tracer, scratch) = try tracer()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let result = try await tracer.traceProgram(file: Self.golden.appendingPathComponent("strawberry.py"), entry: "count_letters",
                                                   argumentsJSON: #"["strawberry", "r"]"#, output: scratch.appendingPathComponent("out"))
        let row = try #require(result.rows.first, "tracer log: \(result.log)")
        #expect(row.outcome == "returned" && !row.truncated && row.threads == "main thread only")
        let frames = row.frames
        #expect(frames.first?.kind == "call" && frames.first?.locals == ["s": "'strawberry'", "letter": "'r'"])
        let bodySteps = frames.filter { $0.kind == "line" && $0.source.contains("n += int") }
        #expect(bodySteps.count == 10)
        // The counter as each line frame sees it (before the line runs): it steps at each 'r'.
        let counts = frames.filter { $0.kind == "line" && $0.source.contains("for c in s") }.compactMap { $0.locals["n"] }
        #expect(counts == ["0", "0", "0", "1", "1", "1", "1", "1", "2", "3", "3"])
        #expect(frames.last?.kind == "return" && frames.last?.value == "3")
        let text = try #require(try result.cwmText(row))
        let expected = try String(contentsOf: Self.golden.appendingPathComponent("strawberry.cwm.txt"), encoding: .utf8)
        #expect(text == expected)
    }

    @Test("a FAIL_TO_PASS test traced at base and with gold: the frames differ, the test fails then passes")
    func beforeAfter() async throws {
        let (tracer, scratch) = try tracer()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let task = try calcly(scratch: scratch)
        let ids = TestSelection(["failing"]).testIDs(of: task.instance)
        #expect(ids == [Self.failing])
        let before = try await tracer.traceTests(task.instance, repository: task.repository, testIDs: ids, patch: nil,
                                                 output: scratch.appendingPathComponent("base"))
        let after = try await tracer.traceTests(task.instance, repository: task.repository, testIDs: ids, patch: task.instance.goldPatch,
                                                output: scratch.appendingPathComponent("gold"))
        let pair = try #require(BeforeAfter.pair(instanceID: task.instance.instanceID, testIDs: ids, before: before.rows, after: after.rows).first)
        #expect(pair.before?.outcome == "failed", "log: \(before.log)")
        #expect(pair.after?.outcome == "passed", "log: \(after.log)")
        #expect(pair.differs)
        // The same code traced again gives the same frames: `differs` is about the fix, not the run.
        let again = try await tracer.traceTests(task.instance, repository: task.repository, testIDs: ids, patch: task.instance.goldPatch,
                                                output: scratch.appendingPathComponent("gold-again"))
        #expect(BeforeAfter.pair(instanceID: task.instance.instanceID, testIDs: ids, before: after.rows, after: again.rows).first?.differs == false)
        // Both traces start in the test and reach the repository's own code.
        for row in [pair.before, pair.after].compactMap({ $0 }) {
            #expect(row.frames.first?.kind == "call" && row.frames.first?.function == "test_power_is_right_associative")
            #expect(row.frames.contains { $0.file.hasPrefix("calcly/") && $0.kind == "line" })
            #expect(row.instanceID == task.instance.instanceID && row.tracer != nil)
        }
    }

    @Test("no such test, a hanging test, a test file and a program with a syntax error are outcomes with reasons; the other tests still run")
    func badInput() async throws {
        var (tracer, scratch) = try tracer()
        defer { try? FileManager.default.removeItem(at: scratch) }
        tracer.testTimeout = 2
        let task = try calcly(scratch: scratch)
        var instance = task.instance
        instance.testPatch = (instance.testPatch ?? "") + """
            diff --git a/tests/test_hang.py b/tests/test_hang.py
            new file mode 100644
            --- /dev/null
            +++ b/tests/test_hang.py
            @@ -0,0 +1,3 @@
            +def test_hang():
            +    while True:
            +        pass
            diff --git a/tests/test_broken.py b/tests/test_broken.py
            new file mode 100644
            --- /dev/null
            +++ b/tests/test_broken.py
            @@ -0,0 +1,2 @@
            +def test_x(:
            +    pass

            """
        let ids = ["tests/test_hang.py::test_hang", "tests/test_eval.py::test_no_such_test", "tests/test_broken.py::test_x", Self.failing]
        let result = try await tracer.traceTests(instance, repository: task.repository, testIDs: ids, patch: instance.goldPatch,
                                                 output: scratch.appendingPathComponent("out"))
        let byID = Dictionary(result.rows.map { ($0.testID ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        let hang = try #require(byID["tests/test_hang.py::test_hang"], "log: \(result.log)")
        #expect(hang.outcome == "failed" && hang.reason?.contains("hang") == true && hang.truncated)
        let missing = try #require(byID["tests/test_eval.py::test_no_such_test"])
        #expect(missing.outcome == "error" && missing.reason?.contains("no such test") == true)
        let broken = try #require(byID["tests/test_broken.py"])
        #expect(broken.outcome == "error" && broken.reason?.contains("SyntaxError") == true)
        #expect(byID[Self.failing]?.outcome == "passed")

        let brokenProgram = scratch.appendingPathComponent("broken.py")
        try Data("def f(:\n    return 1\n".utf8).write(to: brokenProgram)
        let program = try await tracer.traceProgram(file: brokenProgram, entry: "f", argumentsJSON: nil, output: scratch.appendingPathComponent("p"))
        let row = try #require(program.rows.first, "log: \(program.log)")
        #expect(row.outcome == "error" && row.reason?.contains("SyntaxError") == true && row.frames.isEmpty)
    }

    @Test("a batch traces a task's FAIL_TO_PASS tests at base and gold once; run again, it resumes instead")
    func batchResumes() async throws {
        let (tracer, scratch) = try tracer()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let task = try calcly(scratch: scratch)
        let batch = TraceBatch(tracer: tracer, output: scratch.appendingPathComponent("out"), selection: .failing, beforeAfter: true, workers: 2)
        var seen: [Int] = []
        let first = try await batch.run([task]) { _, done in seen.append(done) }
        #expect(seen == [1])
        #expect(first.first?.status == "traced" && first.first?.differing == 1 && first.first?.outcomes == ["passed": 1])
        let pairs = try String(contentsOf: scratch.appendingPathComponent("out/\(task.instance.instanceID)/before_after.jsonl"), encoding: .utf8)
        #expect(pairs.split(separator: "\n").count == 1)
        let second = try await batch.run([task]) { _, _ in }
        #expect(second.first?.status == "resumed" && second.first?.differing == 1)
    }

    @Test("recursion, a generator, coroutines, a caught and an uncaught exception and a thread, as frames")
    func shapes() async throws {
        let (tracer, scratch) = try tracer()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let program = Self.golden.appendingPathComponent("shapes.py")
        let main = try await tracer.traceProgram(file: program, entry: "main", argumentsJSON: nil, output: scratch.appendingPathComponent("main"))
        let row = try #require(main.rows.first, "log: \(main.log)")
        #expect(row.outcome == "returned" && row.threads == "main thread only")
        let frames = row.frames
        func calls(_ name: String) -> Int { frames.filter { $0.kind == "call" && $0.function == name }.count }
        #expect(calls("fact") == 3)
        #expect(frames.filter { $0.kind == "return" && $0.function == "fact" }.map(\.value) == ["1", "2", "6"])
        // A generator: a return frame per yield, then the end of its loop.
        #expect(frames.filter { $0.kind == "return" && $0.function == "evens" }.map(\.value) == ["0", "2", "None"])
        // Caught: the exception in boom, then in main, then main's except line runs.
        let raised = try #require(frames.firstIndex { $0.kind == "exception" && $0.function == "boom" })
        #expect(frames[raised + 1].kind == "exception" && frames[raised + 1].function == "main" && frames[raised + 1].value == "ValueError('bad 6')")
        #expect(frames[raised + 2].kind == "line" && frames[raised + 2].source.contains("except ValueError"))
        // Coroutines are traced inside asyncio.run (a library call): one call frame per resume.
        #expect(frames.contains { $0.kind == "return" && $0.function == "double" && $0.value == "2" })
        #expect(frames.contains { $0.kind == "return" && $0.function == "both" && $0.value == "4" })
        // The StopIteration that ends an awaited coroutine is machinery, not an exception frame.
        #expect(!frames.contains { $0.kind == "exception" && $0.value?.hasPrefix("StopIteration") == true })
        // The thread's code is not traced; library code is entered and left, never stepped through.
        #expect(calls("work") == 0)
        #expect(!frames.contains { $0.kind == "line" && ($0.file.hasPrefix("/") || $0.file.hasPrefix("<")) })
        #expect(frames.last?.kind == "return" && frames.last?.function == "main")

        let failing = try await tracer.traceProgram(file: program, entry: "uncaught", argumentsJSON: nil, output: scratch.appendingPathComponent("u"))
        let uncaught = try #require(failing.rows.first)
        #expect(uncaught.outcome == "raised" && uncaught.reason == "ValueError: bad 1")
        #expect(uncaught.frames.last?.kind == "exception" && uncaught.frames.last?.function == "uncaught")
        #expect(!uncaught.frames.contains { $0.kind == "return" })
        let text = try #require(try failing.cwmText(uncaught))
        #expect(text.hasSuffix("<|exception_sep|><|action_sep|>    boom(1)\n<|arg_sep|>\"ValueError('bad 1')\"<|frame_sep|><|end_of_text|>"))
    }

    @Test("caps on frames, bytes and repr length cut a trace and say so; a cut text has no end of text")
    func caps() async throws {
        var (tracer, scratch) = try tracer()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let program = Self.golden.appendingPathComponent("strawberry.py")
        let arguments = #"["strawberry", "r"]"#
        tracer.limits.maxFrames = 5
        let byFrames = try #require(try await tracer.traceProgram(file: program, entry: "count_letters", argumentsJSON: arguments,
                                                                 output: scratch.appendingPathComponent("f")).rows.first)
        #expect(byFrames.frames.count == 5 && byFrames.truncated && byFrames.truncatedBy == ["frames"] && byFrames.limits?.maxFrames == 5)
        tracer.limits = TraceLimits()
        tracer.limits.maxBytes = 1000
        let bytesOutput = try await tracer.traceProgram(file: program, entry: "count_letters", argumentsJSON: arguments,
                                                        output: scratch.appendingPathComponent("b"))
        let byBytes = try #require(bytesOutput.rows.first)
        #expect(byBytes.truncatedBy == ["bytes"] && byBytes.frames.count > 1 && byBytes.frames.count < 25)
        #expect(try bytesOutput.cwmText(byBytes)?.hasSuffix("<|end_of_text|>") == false)
        tracer.limits = TraceLimits()
        tracer.limits.maxRepr = 4
        let byRepr = try #require(try await tracer.traceProgram(file: program, entry: "count_letters", argumentsJSON: arguments,
                                                               output: scratch.appendingPathComponent("r")).rows.first)
        #expect(byRepr.truncatedBy == ["repr"] && byRepr.frames.first?.locals["s"] == "'str..." && byRepr.frames.count == 25)
    }

    /// A Python 3.12 or later on this machine, for the sys.monitoring back end (the jail's
    /// python3 may be older).
    static let newPython: String? = {
        let pyenv = "/root/.pyenv/versions"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: pyenv)) ?? []
        let candidates = versions.filter { $0.hasPrefix("3.12") || $0.hasPrefix("3.13") }.sorted().map { "\(pyenv)/\($0)/bin/python3" }
            + ["/usr/bin/python3.13", "/usr/bin/python3.12"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    @Test("sys.monitoring (3.12+) and sys.settrace give the same frames", .enabled(if: newPython != nil))
    func backendsAgree() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-trace-backends-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let script = scratch.appendingPathComponent("warden_trace.py")
        try Data(try Tracer.script().utf8).write(to: script)
        try FileManager.default.copyItem(at: Self.golden.appendingPathComponent("shapes.py"), to: scratch.appendingPathComponent("shapes.py"))
        var traces: [[String]] = []
        for python in ["/usr/bin/python3", try #require(Self.newPython)] {
            let out = scratch.appendingPathComponent("out-\(traces.count)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [script.path, "--out", out.path, "--root", scratch.path, "program", "--file", "shapes.py", "--entry", "main"]
            process.currentDirectoryURL = scratch
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let row = try #require(try Tracer.readRows(out.appendingPathComponent("traces.jsonl")).first)
            // Library frames' paths and lines differ between Python versions; a thread's repr has its ident.
            traces.append(row.frames.filter { !$0.file.hasPrefix("/") }.map { frame in
                "\(frame.kind) \(frame.function):\(frame.line) \(frame.locals.filter { $0.key != "t" }.sorted { $0.key < $1.key }) \(frame.value ?? "")"
            })
            #expect(row.tracer == (traces.count == 1 ? "sys.settrace" : "sys.monitoring"))
        }
        #expect(traces[0].count > 20)
        #expect(traces[0] == traces[1])
    }
}
