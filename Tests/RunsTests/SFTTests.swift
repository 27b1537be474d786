import Foundation
import Testing
import WardenCore
@testable import Agent
@testable import Runs

// MARK: - Fake run directories

/// A run directory in a temp dir: results.jsonl rows and trajectories written with TrajectoryWriter.
final class FakeRun {
    let directory: URL
    private var lines: [String] = []

    init(_ name: String, in parent: URL) throws {
        directory = parent.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try flush()
    }

    /// One finished attempt. `formatErrorBefore` inserts a format-error turn before that action index.
    @discardableResult
    func attempt(_ id: String, _ attempt: Int, protocol name: ProtocolName = .cwm, actions: [AgentAction]? = nil, patch: String? = nil,
                 resolved: Bool = true, status: EpisodeExitStatus = .submitted, formatErrorBefore: Int? = nil,
                 reasoning: String? = nil, output: (Int) -> String = { "out \($0)\n" }, writeTrajectory: Bool = true) throws -> AttemptResult {
        let actions = actions ?? [.bash(command: "ls \(attempt)"), .submit(path: nil)]
        let patch = patch ?? "diff --git a/f b/f\n+\(id) \(attempt)\n"
        let relative = "trajectories/\(id)/\(attempt).jsonl"
        let trajectory = try SFTFixtures.trajectory(id: id, protocol: name, actions: actions, patch: patch, status: status,
                                                    formatErrorBefore: formatErrorBefore, reasoning: reasoning, output: output)
        if writeTrajectory {
            let writer = try TrajectoryWriter(url: directory.appendingPathComponent(relative))
            try writer.append(trajectory.header)
            for step in trajectory.steps { try writer.append(step) }
            if let final = trajectory.final { try writer.append(final) }
        }
        let row = AttemptResult(
            instanceID: id, attempt: attempt, exitStatus: status, resolved: resolved, resolution: resolved ? "RESOLVED_FULL" : "RESOLVED_NO",
            failToPassPassed: resolved ? 1 : 0, failToPassTotal: 1, passToPassPassed: 1, passToPassTotal: 1,
            steps: trajectory.steps.count, formatErrors: formatErrorBefore == nil ? 0 : 1, promptTokens: 100 * trajectory.steps.count,
            completionTokens: 10 * trajectory.steps.count, episodeSeconds: 1, scoreSeconds: 1, modelVersions: ["m1"], patch: patch,
            submitted: status == .submitted, trajectory: relative, error: nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        lines.append(String(decoding: try encoder.encode(row), as: UTF8.self))
        try flush()
        return row
    }

    func rawLine(_ text: String) throws {
        lines.append(text)
        try flush()
    }

    private func flush() throws {
        try (lines.map { $0 + "\n" }.joined()).write(to: directory.appendingPathComponent("results.jsonl"), atomically: true, encoding: .utf8)
    }
}

enum SFTFixtures {
    static let limits = AgentConfiguration.Limits(maxSteps: 10, maxContextTokens: 1000)

    static func temporaryDirectory() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-sft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func header(id: String, protocol name: ProtocolName) -> TrajectoryHeader {
        let handler = name.handler
        return TrajectoryHeader(
            wardenVersion: "0.1.0", startedAt: "2025-01-01T00:00:00.000Z", task: TaskInstance(instanceID: id, problemStatement: "Fix \(id)."),
            sourceRepository: nil, baseCommit: "base", baseTree: "tree", checkout: "/repo", sandboxProfile: "agent", model: "scripted",
            configuration: AgentConfiguration(protocol: name, limits: limits),
            messages: [ChatMessage(role: .system, content: "SYSTEM \(name)"), ChatMessage(role: .user, content: "Fix \(id).")],
            tools: handler.tools)
    }

    static func command(_ text: String, output: String) -> CommandResult {
        CommandResult(command: text, exitCode: 0, durationMs: 5, stdout: CapturedOutput(head: output, totalBytes: output.utf8.count),
                      stderr: CapturedOutput(), combined: CapturedOutput(head: output, totalBytes: output.utf8.count), cwd: "/repo")
    }

    /// A trajectory as the agent loop writes it: the protocol's rendering of each action, its
    /// observation with the loop's budget (prompt 100 * turn, completion 10 tokens).
    static func trajectory(id: String, protocol name: ProtocolName, actions: [AgentAction], patch: String, status: EpisodeExitStatus,
                           formatErrorBefore: Int?, reasoning: String?, output: (Int) -> String) throws -> Trajectory {
        let handler = name.handler
        var steps: [TrajectoryStep] = []
        var index = 0
        func budget() -> Budget {
            Budget(remainingTurns: limits.maxSteps - index, remainingTokens: limits.maxContextTokens - 100 * index - 10)
        }
        for (position, action) in actions.enumerated() {
            if position == formatErrorBefore {
                index += 1
                var response = ModelResponse(content: "I will just talk.", finishReason: "stop", promptTokens: 100 * index, completionTokens: 10)
                if name == .tools { response = ModelResponse(content: "", toolCalls: [ToolCall(id: "bad\(index)", name: "bash", arguments: "not json")],
                                                              promptTokens: 100 * index, completionTokens: 10) }
                let turn = handler.parse(response)
                guard case let .formatError(problem, turnReasoning, _) = turn else { Issue.record("not a format error"); continue }
                let feedback = handler.formatFeedback("FEEDBACK: \(problem)", turn: turn)
                steps.append(TrajectoryStep(index: index, startedAt: "s", endedAt: "e", response: response, reasoning: turnReasoning,
                                            formatError: problem, observation: feedback, durationMs: 0, changes: [], gitignoreChanged: false))
            }
            index += 1
            var response = handler.render(action, callID: "call_\(index)")
            response.promptTokens = 100 * index
            response.completionTokens = 10
            if let reasoning {
                if name == .tools { response.content = reasoning } else { response.content = "\(reasoning)\n</think>\n" + response.content }
            }
            let turn = handler.parse(response)
            guard case let .action(parsed, turnReasoning, callID) = turn else { Issue.record("the fixture does not parse: \(turn)"); continue }
            var body: String
            var command: CommandResult?
            var toolOutput: String?
            switch parsed {
            case let .bash(text):
                command = Self.command(text, output: output(index))
                let shown = output(index).hasSuffix("\n") ? String(output(index).dropLast()) : output(index)
                body = "\(shown)\n[exit code 0, 0.01 s]"
            case .submit:
                toolOutput = "Submitted the diff against the base (1 file(s) changed)."
                body = toolOutput ?? ""
            default:
                toolOutput = "Done."
                body = "Done."
            }
            let observation = handler.observation(body, budget: budget(), turn: .action(parsed, reasoning: turnReasoning, callID: callID))
            steps.append(TrajectoryStep(index: index, startedAt: "s", endedAt: "e", response: response, reasoning: turnReasoning,
                                        action: parsed, observation: observation, command: command, toolOutput: toolOutput,
                                        exitCode: 0, durationMs: 5, cwd: "/repo", changes: [], gitignoreChanged: false))
        }
        let final = TrajectoryFinal(endedAt: "e", exitStatus: status, submission: status == .submitted ? patch : nil, finalDiff: patch,
                                    steps: steps.count, formatErrors: formatErrorBefore == nil ? 0 : 1, promptTokens: 100 * steps.count,
                                    completionTokens: 10 * steps.count, wallTimeMs: 1, modelVersions: ["m1"])
        return Trajectory(header: header(id: id, protocol: name), steps: steps, final: final, damagedLines: [])
    }

    static func rows(_ url: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    static func keys(_ report: SFTReport) -> [String] {
        report.selected.map { "\($0.run)/\($0.result.instanceID)#\($0.result.attempt)" }
    }
}

// MARK: - Tests

@Suite("SFT export")
struct SFTTests {
    @Test("the cwm rendering takes each step's recorded body and budget, never parsing the observation text back")
    func rendersFromRecordedData() throws {
        var trajectory = try SFTFixtures.trajectory(id: "a__b-1", protocol: .tools, actions: [.bash(command: "ls"), .submit(path: nil)], patch: "diff",
                                             status: .submitted, formatErrorBefore: nil, reasoning: nil, output: { _ in "x\n" })
        trajectory.steps[0].observationBody = "RECORDED BODY"
        trajectory.steps[0].budget = Budget(remainingTurns: 3, remainingTokens: 77)
        // A body that itself ends like the tools protocol's budget line must not be cut.
        trajectory.steps[0].observation[0].content = "RECORDED BODY\n\nRemaining turns: 1. Remaining tokens: 2."
        trajectory.steps[0].observationBody = trajectory.steps[0].observation[0].content
        let messages = SFTRenderer.cwmMessages(trajectory)
        let tool = try #require(messages.first { $0.role == "tool: bash" })
        #expect(tool.content == "<output>\nRECORDED BODY\n\nRemaining turns: 1. Remaining tokens: 2.\n</output>\n\n<budget>\n* Remaining turns: 3\n* Remaining tokens: 77\n</budget>")
    }

    @Test("SplitMix64 gives the reference sequence and unbiased bounded draws")
    func generator() {
        var generator = SplitMix64(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
        var bounded = SplitMix64(seed: 42)
        for _ in 0..<1000 { #expect((0..<7).contains(bounded.below(7))) }
        #expect(SFTSampling.normalizedPatch("a  \n+b\t\n\n\n") == SFTSampling.normalizedPatch("a\n+b"))
        #expect(SFTSampling.estimatedTokens(bytes: 9) == 3)
        #expect(SFTSampling.estimatedTokens(bytes: 8) == 2)
    }

    @Test("unresolved, limited and format-error attempts are dropped by default, the latter two kept with the flags")
    func filters() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1)
        try run.attempt("t", 2, resolved: false)
        try run.attempt("t", 3, status: .stepLimit)
        try run.attempt("t", 4, formatErrorBefore: 1)

        let strict = try SFTExport.plan(runs: [run.directory], options: SFTOptions(perTask: 10))
        #expect(SFTFixtures.keys(strict) == ["run1/t#1"])
        #expect(strict.tasks["t"]?.dropped == [.unresolved: 1, .limit: 1, .formatErrors: 1])

        let lenient = try SFTExport.plan(runs: [run.directory], options: SFTOptions(perTask: 10, keepFormatErrors: true, keepLimits: true))
        #expect(SFTFixtures.keys(lenient) == ["run1/t#1", "run1/t#3", "run1/t#4"])
        #expect(lenient.tasks["t"]?.dropped == [.unresolved: 1])

        let formatOnly = try SFTExport.plan(runs: [run.directory], options: SFTOptions(perTask: 10, keepFormatErrors: true))
        #expect(SFTFixtures.keys(formatOnly) == ["run1/t#1", "run1/t#4"])

        // The kept format error is in the messages as it happened: the failed turn and its feedback.
        let out = root.appendingPathComponent("sft.jsonl")
        try SFTExport.export(runs: [run.directory], options: SFTOptions(perTask: 10, keepFormatErrors: true), output: out)
        let rows = try SFTFixtures.rows(out)
        let withError = try #require(rows.first { $0["attempt"] as? Int == 4 })
        let messages = try #require(withError["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "user", "assistant", "user", "assistant"])
        #expect(messages[4]["content"] as? String == "I will just talk.")
        #expect((messages[5]["content"] as? String)?.hasPrefix("FEEDBACK: FormatError: No tool calls found") == true)
    }

    @Test("duplicates of a task are dropped: the same patch up to trailing whitespace, or the same actions")
    func duplicates() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        let actions: [AgentAction] = [.bash(command: "pytest"), .submit(path: nil)]
        try run.attempt("t", 1, actions: [.bash(command: "cat a")], patch: "diff --git a/x b/x\n+fix\n")
        try run.attempt("t", 2, actions: [.bash(command: "cat b")], patch: "diff --git a/x b/x  \n+fix\t\n\n")
        try run.attempt("t", 3, actions: actions, patch: "diff --git a/x b/x\n+other\n")
        try run.attempt("t", 4, actions: actions, patch: "diff --git a/x b/x\n+third\n")
        // The same patch in another task is no duplicate.
        try run.attempt("u", 1, actions: [.bash(command: "cat a")], patch: "diff --git a/x b/x\n+fix\n")

        let report = try SFTExport.plan(runs: [run.directory], options: SFTOptions(perTask: 10))
        #expect(SFTFixtures.keys(report) == ["run1/t#1", "run1/t#3", "run1/u#1"])
        #expect(report.tasks["t"]?.dropped == [.duplicatePatch: 1, .duplicateActions: 1])
        #expect(report.tasks["u"]?.dropped == [:])
    }

    @Test("the per-task cap is reproducible for a seed, independent of the order of run directories, and varies with the seed")
    func cap() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try FakeRun("a-run", in: root)
        let second = try FakeRun("b-run", in: root)
        for attempt in 1...4 {
            try first.attempt("t", attempt)
            try second.attempt("t", attempt, actions: [.bash(command: "echo \(attempt)"), .submit(path: nil)], patch: "p\(attempt)")
        }
        try first.attempt("small", 1)

        let options = SFTOptions(perTask: 3, seed: 7)
        let once = try SFTExport.plan(runs: [first.directory, second.directory], options: options)
        let again = try SFTExport.plan(runs: [second.directory, first.directory], options: options)
        #expect(SFTFixtures.keys(once) == SFTFixtures.keys(again))
        #expect(once.selected.filter { $0.result.instanceID == "t" }.count == 3)
        #expect(once.tasks["t"] == SFTCounts(kept: 3, dropped: [.overCap: 5]))
        #expect(once.tasks["small"] == SFTCounts(kept: 1, dropped: [:]))

        // Exported files are byte-identical too.
        let outA = root.appendingPathComponent("a.jsonl"), outB = root.appendingPathComponent("b.jsonl")
        try SFTExport.export(runs: [first.directory, second.directory], options: options, output: outA)
        try SFTExport.export(runs: [second.directory, first.directory], options: options, output: outB)
        #expect(try Data(contentsOf: outA) == Data(contentsOf: outB))

        var choices = Set<[String]>()
        for seed in UInt64(0)..<20 {
            choices.insert(SFTFixtures.keys(try SFTExport.plan(runs: [first.directory, second.directory], options: SFTOptions(perTask: 3, seed: seed))))
        }
        #expect(choices.count > 1)
    }

    @Test("--max-tokens drops rows whose estimate is over it; the estimate is ceil(UTF-8 bytes / 4)")
    func tooLong() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1)
        try run.attempt("t", 2, output: { _ in String(repeating: "x", count: 4000) + "\n" })

        let all = try SFTExport.plan(runs: [run.directory], options: SFTOptions(perTask: 5))
        let short = try #require(all.selected.first { $0.result.attempt == 1 })
        let long = try #require(all.selected.first { $0.result.attempt == 2 })
        #expect(long.estimatedTokens > 1000 && short.estimatedTokens < 300)

        let capped = try SFTExport.plan(runs: [run.directory], options: SFTOptions(perTask: 5, maxTokens: 300))
        #expect(SFTFixtures.keys(capped) == ["run1/t#1"])
        #expect(capped.tasks["t"]?.dropped == [.tooLong: 1])

        // The row's estimate is the byte count of its messages over four, rounded up.
        let out = root.appendingPathComponent("sft.jsonl")
        try SFTExport.export(runs: [run.directory], options: SFTOptions(perTask: 5, maxTokens: 300), output: out)
        let row = try #require(try SFTFixtures.rows(out).first)
        let messages = try #require(row["messages"] as? [[String: Any]])
        let bytes = messages.reduce(0) { $0 + (($1["content"] as? String)?.utf8.count ?? 0) }
        #expect(row["estimated_tokens"] as? Int == (bytes + 3) / 4)
        #expect(row["estimated_tokens"] as? Int == short.estimatedTokens)
    }

    @Test("openai format, cwm run: the opening messages, raw responses with reasoning, observations as recorded")
    func openAICWM() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1, actions: [.bash(command: "ls"), .submit(path: nil)], reasoning: "Look first.")
        let out = root.appendingPathComponent("sft.jsonl")
        try SFTExport.export(runs: [run.directory], options: SFTOptions(), output: out)
        let row = try #require(try SFTFixtures.rows(out).first)
        let messages = try #require(row["messages"] as? [[String: Any]])
        let roles = messages.map { $0["role"] as? String ?? "?" }
        let contents = messages.map { $0["content"] as? String ?? "?" }
        #expect(roles == ["system", "user", "assistant", "user", "assistant"])
        #expect(contents == [
            "SYSTEM cwm", "Fix t.",
            "Look first.\n</think>\n<tool: bash>\nls\n</tool>",
            "<output>\nout 1\n[exit code 0, 0.01 s]\n</output>\n\n<budget>\n* Remaining turns: 9\n* Remaining tokens: 890\n</budget>",
            "Look first.\n</think>\n<tool: submit>\n\n</tool>",
        ])
        #expect(messages[3]["name"] as? String == "tool: bash")
        #expect(messages[2]["tool_calls"] == nil)
        #expect(row["tools"] == nil)
        #expect(row["instance_id"] as? String == "t")
        #expect(row["attempt"] as? Int == 1)
        #expect(row["model"] as? String == "scripted")
        #expect(row["protocol"] as? String == "cwm")
        #expect(row["steps"] as? Int == 2)
        #expect(row["prompt_tokens"] as? Int == 200)
        #expect(row["completion_tokens"] as? Int == 20)
        #expect(row["resolved"] as? Bool == true)
        #expect(row["run"] as? String == "run1")
        #expect(row["estimated_tokens"] as? Int == (contents.reduce(0) { $0 + $1.utf8.count } + 3) / 4)
    }

    @Test("openai format, tools run: native tool_calls and tool turns answering them, with the function schemas")
    func openAITools() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1, protocol: .tools, actions: [.bash(command: "ls"), .submit(path: nil)], reasoning: "Look first.")
        let out = root.appendingPathComponent("sft.jsonl")
        try SFTExport.export(runs: [run.directory], options: SFTOptions(format: .openai), output: out)
        let row = try #require(try SFTFixtures.rows(out).first)
        let messages = try #require(row["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "tool", "assistant"])
        #expect(messages[2]["content"] as? String == "Look first.")
        let calls = try #require(messages[2]["tool_calls"] as? [[String: Any]])
        #expect(calls.count == 1)
        #expect(calls[0]["id"] as? String == "call_1")
        #expect(calls[0]["type"] as? String == "function")
        let function = try #require(calls[0]["function"] as? [String: Any])
        #expect(function["name"] as? String == "bash")
        #expect(function["arguments"] as? String == #"{"command":"ls"}"#)
        #expect(messages[3]["tool_call_id"] as? String == "call_1")
        #expect(messages[3]["content"] as? String == "out 1\n[exit code 0, 0.01 s]\n\nRemaining turns: 9. Remaining tokens: 890.")
        #expect((messages[4]["tool_calls"] as? [[String: Any]])?.first?["id"] as? String == "call_2")
        let tools = try #require(row["tools"] as? [[String: Any]])
        #expect(tools.compactMap { ($0["function"] as? [String: Any])?["name"] as? String } == ["bash", "edit", "create", "submit"])
        #expect(row["protocol"] as? String == "tools")
    }

    @Test("cwm format, cwm run: canonical tool calls after the reasoning, recorded observations as `tool: NAME` turns")
    func cwmFromCWM() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1, actions: [.edit(path: "a.py", search: "x", replace: "y"), .submit(path: nil)], reasoning: "Edit it.")
        let out = root.appendingPathComponent("sft.jsonl")
        try SFTExport.export(runs: [run.directory], options: SFTOptions(format: .cwm), output: out)
        let row = try #require(try SFTFixtures.rows(out).first)
        let messages = try #require(row["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "tool: edit", "assistant"])
        #expect(messages.map { $0["content"] as? String } == [
            "SYSTEM cwm", "Fix t.",
            "Edit it.\n</think>\n<tool: edit>\na.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n</tool>",
            "<output>\nDone.\n</output>\n\n<budget>\n* Remaining turns: 9\n* Remaining tokens: 890\n</budget>",
            "Edit it.\n</think>\n<tool: submit>\n\n</tool>",
        ])
        #expect(row["protocol"] as? String == "cwm")
    }

    @Test("cwm format, tools run: CWM's system prompt, tool tags, and observations rebuilt with the computed budget")
    func cwmFromTools() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1, protocol: .tools, actions: [.bash(command: "ls -la"), .create(path: "n.py", content: "print(1)\n"), .submit(path: nil)])
        let out = root.appendingPathComponent("sft.jsonl")
        try SFTExport.export(runs: [run.directory], options: SFTOptions(format: .cwm), output: out)
        let row = try #require(try SFTFixtures.rows(out).first)
        let messages = try #require(row["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "tool: bash", "assistant", "tool: create", "assistant"])
        let system = try #require(messages[0]["content"] as? String)
        #expect(system.contains("<tool: bash>\n[command(s)]\n</tool>") && system.contains("longer than 120 seconds"))
        #expect(Array(messages.dropFirst().compactMap { $0["content"] as? String }) == [
            "Fix t.",
            "<tool: bash>\nls -la\n</tool>",
            "<output>\nout 1\n[exit code 0, 0.01 s]\n</output>\n\n<budget>\n* Remaining turns: 9\n* Remaining tokens: 890\n</budget>",
            "<tool: create>\nn.py\nprint(1)\n</tool>",
            "<output>\nDone.\n</output>\n\n<budget>\n* Remaining turns: 8\n* Remaining tokens: 790\n</budget>",
            "<tool: submit>\n\n</tool>",
        ])
        #expect(messages.allSatisfy { $0["tool_calls"] == nil && $0["tool_call_id"] == nil })
        #expect(row["tools"] == nil)
        #expect(row["protocol"] as? String == "tools")
    }

    @Test("cwm format rebuilds a body from the command record when the observation has no budget line, and estimates budgets without usage")
    func cwmRebuild() throws {
        var trajectory = try SFTFixtures.trajectory(id: "t", protocol: .tools, actions: [.bash(command: "ls")], patch: "p", status: .submitted,
                                                    formatErrorBefore: nil, reasoning: nil, output: { _ in "a\nb\n" })
        trajectory.steps[0].observation[0].content = "something else"
        trajectory.steps[0].response.promptTokens = nil
        trajectory.steps[0].response.completionTokens = nil
        let messages = SFTRenderer.cwmMessages(trajectory)
        // The loop's estimate: opening messages at bytes / 4 + 4 each; the completion at least 1.
        let prompt = ("SYSTEM tools".utf8.count / 4 + 4) + ("Fix t.".utf8.count / 4 + 4)
        #expect(messages.last?.content == "<output>\na\nb\n[exit code 0, 0.01 s]\n</output>\n\n<budget>\n* Remaining turns: 9\n* Remaining tokens: \(1000 - prompt - 1)\n</budget>")
        #expect(messages.last?.role == "tool: bash")
    }

    @Test("cwm format keeps a tools run's format error as CWM tags and CWM's feedback")
    func cwmFormatErrorFromTools() throws {
        let trajectory = try SFTFixtures.trajectory(id: "t", protocol: .tools, actions: [.submit(path: nil)], patch: "p", status: .submitted,
                                                    formatErrorBefore: 0, reasoning: nil, output: { _ in "" })
        let messages = SFTRenderer.cwmMessages(trajectory)
        #expect(messages.map(\.role) == ["system", "user", "assistant", "user", "assistant", "tool: submit"])
        #expect(messages[2].content == "<tool: bash>\nnot json\n</tool>")
        #expect(messages[3].content.hasPrefix("Your response could not be used: the arguments of bash are not a JSON object"))
        #expect(messages[3].content.contains(CWMProtocol().formatReminder))
    }

    @Test("every row ends with the last assistant turn: the submit when it ends the episode, CWM's final reply after the submission's observation, the last call of a limited run",
          arguments: ProtocolName.allCases)
    func rowEndings(protocol name: ProtocolName) throws {
        let actions: [AgentAction] = [.bash(command: "ls"), .submit(path: nil)]
        func trajectory(status: EpisodeExitStatus = .submitted, actions: [AgentAction] = actions) throws -> Trajectory {
            try SFTFixtures.trajectory(id: "t", protocol: name, actions: actions, patch: "p", status: status, formatErrorBefore: nil,
                                       reasoning: nil, output: { _ in "out\n" })
        }
        func row(_ trajectory: Trajectory, _ format: SFTFormat) throws -> SFTRow {
            let result = AttemptResult(
                instanceID: "t", attempt: 1, exitStatus: trajectory.final?.exitStatus ?? .submitted, resolved: true, resolution: "RESOLVED_FULL",
                failToPassPassed: 1, failToPassTotal: 1, passToPassPassed: 1, passToPassTotal: 1, steps: trajectory.steps.count, formatErrors: 0,
                promptTokens: 0, completionTokens: 0, episodeSeconds: 1, scoreSeconds: 1, modelVersions: [], patch: "p", submitted: true,
                trajectory: "", error: nil)
            return SFTRenderer.row(trajectory, result: result, run: "run1", format: format)
        }
        func isSubmit(_ message: SFTMessage?) -> Bool {
            guard let message, message.role == "assistant" else { return false }
            return message.toolCalls?.first?.function.name == "submit" || message.content.contains("<tool: submit>")
                || message.content.contains("```bash\nsubmit\n```")
        }

        // mini-swe-agent's ending: the submit ends the episode, so it is the last turn.
        let submitted = try trajectory()
        for format in SFTFormat.allCases {
            let messages = try row(submitted, format).messages
            #expect(isSubmit(messages.last), "\(format): \(messages.last?.role ?? "none") last")
        }

        // CWM's ending: submit, its observation, then a reply with no tool call ends the episode.
        var cwmRule = submitted
        cwmRule.header.configuration.submitEndsEpisode = false
        let summary = "## Summary\nFixed greet()."
        cwmRule.steps.append(TrajectoryStep(
            index: 3, startedAt: "s", endedAt: "e", response: ModelResponse(content: summary, finishReason: "stop"), reasoning: nil,
            observation: [], durationMs: 0, changes: [], gitignoreChanged: false))
        for format in SFTFormat.allCases {
            let messages = try row(cwmRule, format).messages
            #expect(messages.last?.role == "assistant" && messages.last?.content == summary, "\(format): \(messages.last?.content ?? "none")")
            #expect(messages.count >= 3 && isSubmit(messages[messages.count - 3]), "\(format): the submit is not two turns before the end")
            #expect(messages.count >= 2 && messages[messages.count - 2].role != "assistant", "\(format): the submission's observation is missing")
            #expect(!messages.contains { $0.content.contains("could not be used") }, "\(format): the final reply was fed back as a format error")
        }
        #expect(SFTRenderer.cwmMessages(cwmRule).last?.content == summary, "the final reply is no format error")

        // A run a limit ended (kept with --keep-limits) ends at its last call, not at its output.
        let limited = try trajectory(status: .stepLimit, actions: [.bash(command: "ls"), .bash(command: "pytest")])
        for format in SFTFormat.allCases {
            let last = try row(limited, format).messages.last
            #expect(last?.role == "assistant" && (last?.content.contains("pytest") == true || last?.toolCalls?.first?.function.arguments.contains("pytest") == true),
                    "\(format): \(last?.role ?? "none") last")
        }
    }

    @Test("several run directories merge; a malformed results line and a missing trajectory are reported with file and line, and skipped")
    func mergeAndBadInput() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try FakeRun("first", in: root)
        let second = try FakeRun("second", in: root)
        try first.attempt("t", 1)
        try first.rawLine(#"{"instance_id": "t", "attempt": "#)
        try first.attempt("u", 1, writeTrajectory: false)
        try second.attempt("t", 1, actions: [.bash(command: "pwd"), .submit(path: nil)], patch: "other")
        try second.attempt("v", 1)
        try second.rawLine(#"{"instance_id": "v", "attempt": 2}"#)

        let out = root.appendingPathComponent("sft.jsonl")
        let report = try SFTExport.export(runs: [second.directory, first.directory], options: SFTOptions(), output: out)
        #expect(SFTFixtures.keys(report) == ["first/t#1", "second/t#1", "second/v#1"])
        let rows = try SFTFixtures.rows(out)
        #expect(rows.map { "\($0["run"] as? String ?? "")/\($0["instance_id"] as? String ?? "")" } == ["first/t", "second/t", "second/v"])

        let problems = report.diagnostics.map(\.description)
        #expect(problems.count == 3)
        #expect(problems.contains { $0.hasPrefix(first.directory.appendingPathComponent("results.jsonl").path + ":2: not a results row") })
        #expect(problems.contains { $0.hasPrefix(second.directory.appendingPathComponent("results.jsonl").path + ":3: not a results row (the field \"exit_status\" is missing)") })
        #expect(problems.contains {
            $0.hasPrefix(first.directory.appendingPathComponent("trajectories/u/1.jsonl").path + ": the trajectory file is missing (results line 3: u attempt 1)")
        })
        #expect(report.tasks["u"]?.dropped == [.unreadable: 1])
    }

    @Test("a damaged trajectory line or a trajectory of another task is unreadable")
    func damagedTrajectory() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1)
        try run.attempt("t", 2)
        let damaged = run.directory.appendingPathComponent("trajectories/t/1.jsonl")
        let handle = try FileHandle(forWritingTo: damaged)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"type": "step", "ind"#.utf8))
        try handle.close()
        try FileManager.default.copyItem(at: run.directory.appendingPathComponent("trajectories/t/2.jsonl"),
                                         to: run.directory.appendingPathComponent("trajectories/w/1.jsonl").creatingParent())
        try run.attempt("w", 1, writeTrajectory: false)

        let report = try SFTExport.plan(runs: [run.directory], options: SFTOptions())
        #expect(SFTFixtures.keys(report) == ["run1/t#2"])
        #expect(report.tasks["t"]?.dropped == [.unreadable: 1])
        #expect(report.tasks["w"]?.dropped == [.unreadable: 1])
        #expect(report.diagnostics.map(\.description).contains { $0.contains("1.jsonl:5: 1 damaged line(s)") })
        #expect(report.diagnostics.map(\.description).contains { $0.contains("the trajectory is of t, not w") })
    }

    @Test("statistics count every attempt once, per task and in total, and say the token counts are estimates")
    func statistics() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        for attempt in 1...5 { try run.attempt("a", attempt) }
        try run.attempt("a", 6, resolved: false)
        try run.attempt("a", 7, patch: "diff --git a/f b/f\n+a 1\n")
        try run.attempt("b", 1, status: .tokenLimit)
        try run.attempt("b", 2, formatErrorBefore: 0)

        let report = try SFTExport.plan(runs: [run.directory], options: SFTOptions(perTask: 3))
        #expect(report.tasks["a"] == SFTCounts(kept: 3, dropped: [.unresolved: 1, .duplicatePatch: 1, .overCap: 2]))
        #expect(report.tasks["b"] == SFTCounts(kept: 0, dropped: [.limit: 1, .formatErrors: 1]))
        #expect(report.totals == SFTCounts(kept: 3, dropped: [.unresolved: 1, .duplicatePatch: 1, .overCap: 2, .limit: 1, .formatErrors: 1]))
        #expect(report.totals.attempts == 9)
        let summary = report.summary
        #expect(summary.contains("a: kept 3 of 7; dropped: unresolved 1, duplicate patch 1, over the cap 2"))
        #expect(summary.contains("b: kept 0 of 2; dropped: limit 1, format errors 1"))
        #expect(summary.contains("total over 2 task(s), 1 with rows: kept 3 of 9; dropped: unresolved 1, limit 1, format errors 1, duplicate patch 1, over the cap 2"))
        #expect(summary.contains("token counts are estimates"))
    }

    @Test("the output is replaced atomically: no temporary file is left, and a bad destination is an error naming it")
    func atomicOutput() throws {
        let root = try SFTFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try FakeRun("run1", in: root)
        try run.attempt("t", 1)
        let out = root.appendingPathComponent("sft.jsonl")
        try "old content\n".write(to: out, atomically: false, encoding: .utf8)
        try SFTExport.export(runs: [run.directory], options: SFTOptions(), output: out)
        #expect(try SFTFixtures.rows(out).count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted() == ["run1", "sft.jsonl"])

        let missing = root.appendingPathComponent("nowhere/sft.jsonl")
        #expect(throws: WardenError.self) { try SFTExport.export(runs: [run.directory], options: SFTOptions(), output: missing) }
        do {
            try SFTExport.export(runs: [root.appendingPathComponent("not-a-run")], options: SFTOptions(), output: out)
            Issue.record("a directory without results.jsonl was accepted")
        } catch let error as WardenError {
            #expect(error.description.contains("not-a-run: no results.jsonl"))
        }
        #expect(try SFTFixtures.rows(out).count == 1)
    }
}

extension URL {
    fileprivate func creatingParent() throws -> URL {
        try FileManager.default.createDirectory(at: deletingLastPathComponent(), withIntermediateDirectories: true)
        return self
    }
}
