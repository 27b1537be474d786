import Foundation
import Synchronization
import Testing
import WardenCore
@testable import Models

/// A fresh temporary directory, removed after `body`.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-models-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

func wardenError(_ operation: () throws -> Any) -> WardenError? {
    do {
        _ = try operation()
        Issue.record("expected a WardenError")
        return nil
    } catch let error as WardenError {
        return error
    } catch {
        Issue.record("expected a WardenError, got \(error)")
        return nil
    }
}

@Suite("ReplayClient")
struct ReplayClientTests {
    let request = ModelRequest(messages: [ChatMessage(role: .user, content: "go")])

    @Test func replaysInOrderThenExhausted() async throws {
        let client = ReplayClient(contents: ["one", "two"])
        #expect(try await client.complete(request).content == "one")
        #expect(client.remaining == 1)
        #expect(try await client.complete(request).content == "two")
        let error = await modelError { try await client.complete(request) }
        #expect(error?.kind == .exhausted)
        // Still exhausted, not a crash.
        #expect(await modelError { try await client.complete(request) }?.kind == .exhausted)
    }

    @Test func loadsAJSONList() async throws {
        let text = #"""
        [
          "plain text",
          {"content": "with a tool", "reasoning": "hmm",
           "tool_calls": [{"id": "t1", "name": "bash", "arguments": "{\"command\": \"ls\"}"},
                          {"type": "function", "function": {"name": "submit", "arguments": {"path": "p"}}}]},
          {"content": null}
        ]
        """#
        let client = try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("responses.json")
            try Data(text.utf8).write(to: url)
            return try ReplayClient.load(url: url)
        }
        do {
            #expect(client.name == "replay:responses.json")
            let first = try await client.complete(request)
            #expect(first.content == "plain text")
            let second = try await client.complete(request)
            #expect(second.content == "with a tool")
            #expect(second.reasoning == "hmm")
            #expect(second.toolCalls == [
                ToolCall(id: "t1", name: "bash", arguments: #"{"command": "ls"}"#),
                ToolCall(id: "call_1", name: "submit", arguments: #"{"path":"p"}"#),
            ])
            #expect(try await client.complete(request).content == "")
            #expect(await modelError { try await client.complete(request) }?.kind == .exhausted)
        }
    }

    @Test func loadsATrajectory() async throws {
        let recorded = [
            ModelResponse(content: "<tool: bash>\nls\n</tool>", reasoning: "look first", finishReason: "stop",
                          model: "policy-v1", promptTokens: 100, completionTokens: 10, latencyMs: 812.5, attempts: 2,
                          logprobs: [TokenLogprob(token: "<", logprob: -0.01)]),
            ModelResponse(content: "", toolCalls: [ToolCall(id: "c9", name: "submit", arguments: "{}")],
                          finishReason: "tool_calls", model: "policy-v2"),
        ]
        var lines: [String] = [#"{"type": "header", "task": "demo__demo-1"}"#]
        for (index, response) in recorded.enumerated() {
            let json = String(decoding: try JSONEncoder().encode(response), as: UTF8.self)
            lines.append(#"{"type": "step", "step": \#(index), "response": \#(json), "observation": "x"}"#)
            lines.append("")
        }
        lines.append(#"{"type": "result", "exitStatus": "submitted"}"#)
        let text = lines.joined(separator: "\n") + "\n"
        let client = try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("run.jsonl")
            try Data(text.utf8).write(to: url)
            return try ReplayClient.load(url: url)
        }
        #expect(try await client.complete(request) == recorded[0])
        #expect(try await client.complete(request) == recorded[1])
        #expect(await modelError { try await client.complete(request) }?.kind == .exhausted)
    }

    @Test func malformedLineNamesFileAndLine() throws {
        let text = """
        {"type": "header"}
        {"type": "step", "response": {"content": "ok", "toolCalls": [], "latencyMs": 1, "attempts": 1}}
        {"type": "step", "response": {"content": "cut
        """
        let error = try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("broken.jsonl")
            try Data(text.utf8).write(to: url)
            return (wardenError { try ReplayClient.load(url: url) }, url.path)
        }
        #expect(error.0?.code == "replay.invalid")
        #expect(error.0?.context == "\(error.1):3")
        #expect(error.0?.description.hasPrefix("\(error.1):3: not a valid JSON line") == true)
    }

    @Test func badFilesAreExplained() throws {
        try withTemporaryDirectory { directory in
            let noResponse = directory.appendingPathComponent("a.jsonl")
            try Data(#"{"type": "step", "step": 0}"#.utf8).write(to: noResponse)
            let e1 = wardenError { try ReplayClient.load(url: noResponse) }
            #expect(e1?.context == "\(noResponse.path):1")
            #expect(e1?.message.contains("response") == true)

            let noSteps = directory.appendingPathComponent("b.jsonl")
            try Data(#"{"type": "header"}"#.utf8).write(to: noSteps)
            #expect(wardenError { try ReplayClient.load(url: noSteps) }?.message.contains("no step lines") == true)

            let badItem = directory.appendingPathComponent("c.json")
            try Data(#"["fine", 42]"#.utf8).write(to: badItem)
            #expect(wardenError { try ReplayClient.load(url: badItem) }?.context == "\(badItem.path): item 2")

            let badField = directory.appendingPathComponent("d.json")
            try Data(#"[{"content": 3}]"#.utf8).write(to: badField)
            let e4 = wardenError { try ReplayClient.load(url: badField) }
            #expect(e4?.message.contains("\"content\" must be a string") == true)

            let neither = directory.appendingPathComponent("e.txt")
            try Data("hello".utf8).write(to: neither)
            #expect(wardenError { try ReplayClient.load(url: neither) }?.code == "replay.invalid")

            let missing = directory.appendingPathComponent("missing.json")
            #expect(wardenError { try ReplayClient.load(url: missing) }?.code == "replay.unreadable")
        }
    }
}

/// Scripted terminal input and captured output for `HumanClient`.
final class Terminal: Sendable {
    private let lines: Mutex<[String]>
    private let written = Mutex("")

    init(_ lines: [String]) {
        self.lines = Mutex(lines)
    }

    var output: String { written.withLock { $0 } }

    func client() -> HumanClient {
        HumanClient(
            input: { self.lines.withLock { $0.isEmpty ? nil : $0.removeFirst() } },
            output: { text in self.written.withLock { $0 += text } }
        )
    }

    func clearOutput() { written.withLock { $0 = "" } }
}

@Suite("HumanClient")
struct HumanClientTests {
    @Test func readsUntilADotAndShowsOnlyNewMessages() async throws {
        let terminal = Terminal(["<tool: bash>", "ls", "</tool>", ".", "done", "."])
        let client = terminal.client()
        var messages = [ChatMessage(role: .system, content: "Be brief."), ChatMessage(role: .user, content: "Fix the bug.")]
        let first = try await client.complete(ModelRequest(messages: messages))
        #expect(first.content == "<tool: bash>\nls\n</tool>")
        #expect(terminal.output.contains("Be brief."))
        #expect(terminal.output.contains("Fix the bug."))
        #expect(terminal.output.contains("end with a line holding only"))

        terminal.clearOutput()
        messages.append(ChatMessage(role: .assistant, content: first.content))
        messages.append(ChatMessage(role: .user, content: "<output>\na.py\n</output>"))
        let second = try await client.complete(ModelRequest(messages: messages))
        #expect(second.content == "done")
        #expect(terminal.output.contains("a.py"))
        #expect(!terminal.output.contains("Fix the bug."))
        #expect(!terminal.output.contains("<tool: bash>"))
        #expect(client.name == "human")
    }

    @Test func endOfInputIsExhausted() async throws {
        let terminal = Terminal(["half an answer"])
        let error = await modelError {
            try await terminal.client().complete(ModelRequest(messages: [ChatMessage(role: .user, content: "hi")]))
        }
        #expect(error?.kind == .exhausted)
    }
}
