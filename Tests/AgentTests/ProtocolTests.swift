import Agent
import Testing
import WardenCore

@Suite("Action protocols parse exactly one action")
struct ProtocolTests {
    let cwm = CWMProtocol()
    let fenced = FencedProtocol()
    let tools = ToolsProtocol()

    func action(_ turn: ParsedTurn) -> AgentAction? {
        if case let .action(action, _, _) = turn { return action }
        return nil
    }

    func problem(_ turn: ParsedTurn) -> String? {
        if case let .formatError(message, _, _) = turn { return message }
        return nil
    }

    @Test("cwm: one call, reasoning stripped before </think>, each tool's arguments")
    func cwmCalls() {
        let turn = cwm.parse(ModelResponse(content: "Let me look.\n</think>\n<tool: bash>\nls -la\n</tool>"))
        #expect(action(turn) == .bash(command: "ls -la"))
        #expect(turn.reasoning == "Let me look.")
        #expect(action(cwm.parse(ModelResponse(content: "<tool: submit>\n\n</tool>"))) == .submit(path: nil))
        #expect(action(cwm.parse(ModelResponse(content: "Done.\n</think>\n<tool: submit>\n</tool>"))) == .submit(path: nil))
        #expect(action(cwm.parse(ModelResponse(content: "<tool: submit>\nfix.patch\n</tool>"))) == .submit(path: "fix.patch"))
        #expect(action(cwm.parse(ModelResponse(content: "<tool: create>\na/b.py\nx = 1\n</tool>"))) == .create(path: "a/b.py", content: "x = 1\n"))
        let edit = "<tool: edit>\nm.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n</tool>"
        #expect(action(cwm.parse(ModelResponse(content: edit))) == .edit(path: "m.py", search: "old", replace: "new"))
        // A multi-line command with its own closing-tag-like text inside a heredoc still parses once.
        #expect(action(cwm.parse(ModelResponse(content: "<tool: bash>\ncat <<'E'\na\nE\n</tool>"))) == .bash(command: "cat <<'E'\na\nE"))
    }

    @Test("cwm: zero calls, two calls, stray tags, unknown tools and bad edits are format errors")
    func cwmErrors() {
        // CWM's own messages (cwm/rl/swerl/default_tools.py), prefixed with the exception type.
        #expect(problem(cwm.parse(ModelResponse(content: "I think we are done."))) == "FormatError: No tool calls found")
        #expect(problem(cwm.parse(ModelResponse(content: "<tool: bash>\nls\n</tool>\n<tool: bash>\npwd\n</tool>")))
            == "FormatError: Expected one tool call, but found 2: bash, bash. Ensure only one <tool:...></tool> block is present in the response.")
        #expect(problem(cwm.parse(ModelResponse(content: "<tool: bash>ls</tool>")))
            == "FormatError: Mismatch in tool tag counts: found 0 tool calls via regex, but counted 1 opening tags and 1 closing tags.")
        #expect(problem(cwm.parse(ModelResponse(content: "<tool: bash>\nls\n</tool> and </tool>")))?.hasPrefix("FormatError: Mismatch in tool tag counts") == true)
        #expect(problem(cwm.parse(ModelResponse(content: "<tool: bash>\necho '<tool: x>'\n</tool>")))?.hasPrefix("FormatError: Mismatch in tool tag counts") == true)
        #expect(problem(cwm.parse(ModelResponse(content: "<tool: bash>\n  \n</tool>")))
            == "FormatError: Tool 'bash' requires non-empty arguments, but received empty or whitespace-only input.")
        #expect(problem(cwm.parse(ModelResponse(content: "<tool: python>\nprint(1)\n</tool>"))) == "NoSuchToolError: Tool 'python' not found.")
        #expect(problem(cwm.parse(ModelResponse(content: "<tool: edit>\nm.py\nno block\n</tool>")))?.contains("SEARCH") == true)
        #expect(problem(cwm.parse(ModelResponse(content: "a</think>b</think><tool: bash>\nls\n</tool>"))) == "FormatError: Expected exactly one thinking end token, got 2")
    }

    @Test("fenced: exactly one bash block; submit ends")
    func fencedBlocks() {
        #expect(action(fenced.parse(ModelResponse(content: "Look:\n```bash\nls\n```"))) == .bash(command: "ls"))
        #expect(action(fenced.parse(ModelResponse(content: "```bash\nsubmit\n```"))) == .submit(path: nil))
        #expect(problem(fenced.parse(ModelResponse(content: "no block"))) == "the response has no ```bash block")
        #expect(problem(fenced.parse(ModelResponse(content: "```bash\nls\n```\n```bash\npwd\n```")))?.contains("2 code blocks") == true)
    }

    @Test("tools: one function call with JSON arguments; errors answer every call id")
    func functionCalls() {
        let call = ToolCall(id: "c1", name: "edit", arguments: #"{"path": "a.py", "search": "x", "replace": "y"}"#)
        #expect(action(tools.parse(ModelResponse(content: "", toolCalls: [call]))) == .edit(path: "a.py", search: "x", replace: "y"))
        let two = ModelResponse(content: "", toolCalls: [call, ToolCall(id: "c2", name: "bash", arguments: #"{"command": "ls"}"#)])
        let turn = tools.parse(two)
        #expect(problem(turn)?.contains("2 functions") == true)
        #expect(tools.formatFeedback("bad", turn: turn).map(\.toolCallID) == ["c1", "c2"])
        #expect(problem(tools.parse(ModelResponse(content: "", toolCalls: [ToolCall(id: "c", name: "bash", arguments: "{oops")])))?.contains("not a JSON object") == true)
        #expect(problem(tools.parse(ModelResponse(content: "", toolCalls: [ToolCall(id: "c", name: "bash", arguments: "{}")])))?.contains("\"command\"") == true)
        #expect(tools.tools.map(\.name) == ["bash", "edit", "create", "submit"])
    }

    @Test("render and parse agree for every protocol and action", arguments: ProtocolName.allCases)
    func roundTrip(name: ProtocolName) throws {
        let handler = name.handler
        var actions: [AgentAction] = [.bash(command: "echo 'a b'\nls"), .submit(path: nil), .submit(path: "x.patch"), .create(path: "n.txt", content: "hi\n")]
        if name != .fenced { actions.append(.edit(path: "m.py", search: "a\nb", replace: "c")) }
        for original in actions {
            let parsed = action(handler.parse(handler.render(original, callID: "id")))
            if name == .fenced, case let .create(path, _) = original {
                #expect(parsed == .bash(command: "cat > \(path) <<'WARDEN_EOF'\nhi\nWARDEN_EOF"))
            } else {
                #expect(parsed == original)
            }
        }
    }
}
