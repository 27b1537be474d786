import Agent
import Foundation
import Sandbox
import Testing
import WardenCore

@Suite("Agent loop against the real jail")
struct AgentLoopTests {
    @Test("state persists across steps and a submit ends the episode with the libgit2 diff")
    func persistenceAndSubmit() async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            bash("mkdir -p sub && cd sub && export GREETING=Hi"),
            "I will now edit.\n</think>\n" + bash("pwd; echo $GREETING"),
            "<tool: edit>\n../app.py\n<<<<<<< SEARCH\n    return 'Hello ' + name\n=======\n    return 'Hi ' + name\n>>>>>>> REPLACE\n</tool>",
            "<tool: submit>\n\n</tool>",
        ])
        let (final, trajectory) = try await fixture.run(model)
        #expect(final.exitStatus == .submitted)
        #expect(final.steps == 4)
        #expect(trajectory.steps[1].command?.stdout.text.hasSuffix("/checkout/sub\nHi\n") == true)
        #expect(trajectory.steps[1].reasoning == "I will now edit.")
        #expect(trajectory.steps[2].changes == [FileChange(path: "app.py", status: .modified)])
        let submission = try #require(final.submission)
        #expect(submission.contains("+    return 'Hi ' + name"))
        #expect(final.finalDiff == submission)
        // The observation the model saw is CWM's: output, then the budget.
        let seen = trajectory.steps[1].observation[0].content
        #expect(seen.hasPrefix("<output>\n"))
        #expect(seen.contains("[exit code 0"))
        #expect(seen.contains("<budget>\n* Remaining turns: 126\n"))
    }

    @Test("format errors are fed back, counted, and three in a row end the episode")
    func formatErrors() async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            "no tool call here",
            bash("true"),
            bash("ls") + "\n" + bash("pwd"),
            "<tool: teleport>\nmars\n</tool>",
            "a </think> b </think> c",
        ])
        let (final, trajectory) = try await fixture.run(model)
        #expect(final.exitStatus == .formatErrors)
        #expect(final.formatErrors == 4)
        #expect(trajectory.steps.map { $0.formatError != nil } == [true, false, true, true, true])
        // CWM's messages, fed back as CWM does: "ExceptionType: message" as a user message.
        #expect(trajectory.steps[0].formatError == "FormatError: No tool calls found")
        #expect(trajectory.steps[2].formatError?.hasPrefix("FormatError: Expected one tool call, but found 2: bash, bash.") == true)
        #expect(trajectory.steps[3].formatError == "NoSuchToolError: Tool 'teleport' not found.")
        let requests = model.requests.withLock { $0 }
        #expect(requests[1].messages.last?.content == "FormatError: No tool calls found")
        #expect(requests[1].messages.last?.role == .user)
        #expect(final.submission == nil)
    }

    @Test("each limit ends the episode with its own status", arguments: ["steps", "context", "total", "wall"])
    func limits(kind: String) async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        var configuration = AgentConfiguration()
        let expected: EpisodeExitStatus
        switch kind {
        case "steps": configuration.limits.maxSteps = 2; expected = .stepLimit
        case "context": configuration.limits.maxContextTokens = 100; expected = .tokenLimit
        case "total": configuration.limits.maxTotalTokens = 200; expected = .tokenLimit
        default: configuration.limits.wallTimeSeconds = 1.5; expected = .wallTime
        }
        let model = ScriptedModel(Array(repeating: bash(kind == "wall" ? "sleep 1" : "echo x > f.txt"), count: 10))
        let (final, _) = try await fixture.run(model, configuration: configuration)
        #expect(final.exitStatus == expected)
        #expect(final.submission == nil)
        if kind != "wall" { #expect(final.finalDiff.contains("+x")) }
    }

    @Test("model failures end the episode: context length, an unavailable server, cancellation")
    func modelFailures() async throws {
        for (error, status) in [(ModelError(.contextLength, "too long"), EpisodeExitStatus.contextLength),
                                (ModelError(.unavailable, "503 five times"), .modelError),
                                (ModelError(.cancelled, "stop"), .cancelled)] {
            let fixture = try EpisodeFixture()
            defer { fixture.cleanup() }
            let model = ScriptedModel(results: [.success(ModelResponse(content: bash("true"))), .failure(error)])
            let (final, trajectory) = try await fixture.run(model)
            #expect(final.exitStatus == status)
            #expect(final.steps == 1)
            #expect(trajectory.final?.detail?.isEmpty == false)
        }
    }

    @Test("a command timeout shows the partial output and the fresh shell")
    func timeoutObservation() async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        var configuration = AgentConfiguration()
        configuration.limits.commandTimeoutSeconds = 1
        let model = ScriptedModel([bash("cd /tmp && export A=1"), bash("echo partial; sleep 30"), bash("pwd; echo A=$A"), "<tool: submit>\n\n</tool>"])
        let (_, trajectory) = try await fixture.run(model, configuration: configuration)
        let timedOut = trajectory.steps[1].observation[0].content
        #expect(timedOut.contains("partial\n[the command timed out after"))
        #expect(trajectory.steps[1].command?.timedOut == true)
        let after = trajectory.steps[2].observation[0].content
        #expect(after.contains("[a fresh shell was started in /tmp because the previous command timed out"))
        // Exports survive the restart (the fresh jail starts with the last ones); the rest is lost.
        #expect(after.contains("/tmp\nA=1\n"))
    }

    @Test("submit with a path submits that patch file")
    func submitPath() async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let model = ScriptedModel([bash("printf 'diff --git a/x b/x\\n' > /tmp/x.patch; cp /tmp/x.patch fix.patch"), "<tool: submit>\nfix.patch\n</tool>"])
        let (final, _) = try await fixture.run(model)
        #expect(final.exitStatus == .submitted)
        #expect(final.submission == "diff --git a/x b/x\n")
    }

    @Test("edit and create resolve symlinks inside the jail: a link to a host path the jail lacks reaches nothing")
    func confinedFileTools() async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let outside = fixture.root.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try "secret\n".write(to: outside.appendingPathComponent("target.txt"), atomically: true, encoding: .utf8)
        let model = ScriptedModel([
            "<tool: create>\nescape/new.txt\npwned\n</tool>",
            "<tool: edit>\nlink.txt\n<<<<<<< SEARCH\nsecret\n=======\npwned\n>>>>>>> REPLACE\n</tool>",
            "<tool: create>\n../outside/other.txt\npwned\n</tool>",
            "<tool: create>\nnested/dir/ok.txt\nfine\n</tool>",
        ])
        var configuration = AgentConfiguration()
        configuration.limits.maxSteps = 4
        let (_, trajectory) = try await fixture.run(model, configuration: configuration) { checkout in
            try FileManager.default.createSymbolicLink(atPath: checkout.appendingPathComponent("escape").path, withDestinationPath: outside.path)
            try FileManager.default.createSymbolicLink(atPath: checkout.appendingPathComponent("link.txt").path,
                                                       withDestinationPath: outside.appendingPathComponent("target.txt").path)
        }
        #expect(!FileManager.default.fileExists(atPath: outside.appendingPathComponent("new.txt").path))
        #expect(try String(contentsOf: outside.appendingPathComponent("target.txt"), encoding: .utf8) == "secret\n")
        #expect(!FileManager.default.fileExists(atPath: outside.appendingPathComponent("other.txt").path))
        #expect(trajectory.steps[0].toolOutput?.contains("No such file or directory") == true)
        #expect(trajectory.steps[1].toolOutput == "The path link.txt does not exist. Please provide a valid path.")
        // In the jail, the checkout's parent is a mount point the jail's root does not own: the
        // tool is refused as `mkdir ../outside` is.
        #expect(trajectory.steps[2].toolOutput?.hasSuffix("/checkout/../outside: permission denied, as it would be for a command in the sandbox.") == true)
        #expect(try String(contentsOf: fixture.checkout.appendingPathComponent("nested/dir/ok.txt"), encoding: .utf8) == "fine\n")
        #expect(trajectory.steps[3].changes == [FileChange(path: "nested/dir/ok.txt", status: .added)])
    }

    @Test("the oracle applies the gold patch and submits it, in every protocol", arguments: ProtocolName.allCases)
    func oracle(protocolName: ProtocolName) async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let gold = """
            diff --git a/app.py b/app.py
            --- a/app.py
            +++ b/app.py
            @@ -1,2 +1,2 @@
             def greet(name):
            -    return 'Hello ' + name
            +    return 'Hi ' + name

            """
        var configuration = AgentConfiguration()
        configuration.protocol = protocolName
        let model = OracleModel(goldPatch: gold, protocol: protocolName.handler)
        let (final, trajectory) = try await fixture.run(model, configuration: configuration)
        #expect(final.exitStatus == .submitted)
        #expect(final.steps == 3)
        #expect(trajectory.steps[1].exitCode == 0)
        #expect(final.submission?.contains("+    return 'Hi ' + name") == true)
        #expect(trajectory.header.configuration.protocol == protocolName)
    }
}
