import Agent
import Foundation
import Sandbox
import Testing
import WardenCore

/// Episodes written the way a CWM-trained model writes them (reasoning ended by `</think>`,
/// `<tool: NAME>\n...\n</tool>`, patch files in /tmp), driven through the real jail. Each must
/// end `submitted` with the right patch.
@Suite("CWM conformance: a CWM model's habits work end to end")
struct CWMConformanceTests {
    static let files = [
        "app.py": "def greet(name):\n    return 'Hello ' + name\n",
        "pkg/mod.py": "VALUE = 1\n",
    ]
    static let fixEdit = "<tool: edit>\napp.py\n<<<<<<< SEARCH\n    return 'Hello ' + name\n=======\n    return 'Hi ' + name\n>>>>>>> REPLACE\n</tool>"
    static let fixLines = "-    return 'Hello ' + name\n+    return 'Hi ' + name\n"

    func think(_ reasoning: String, _ call: String) -> String { "\(reasoning)\n</think>\n\(call)" }

    /// Checks the episode ended `submitted` with a git patch of app.py holding the fix.
    func expectAppFix(_ final: TrajectoryFinal, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(final.exitStatus == .submitted, sourceLocation: sourceLocation)
        let patch = final.submission ?? ""
        #expect(patch.hasPrefix("diff --git a/app.py b/app.py\n"), sourceLocation: sourceLocation)
        #expect(patch.contains(Self.fixLines), sourceLocation: sourceLocation)
    }

    @Test("reasoning before </think>, a patch written to /tmp and submitted by path")
    func patchInTmp() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            think("Let me read the code first.", bash("cat app.py")),
            think("The greeting is wrong; I'll fix it.", Self.fixEdit),
            think("Now the patch.", bash("git diff > /tmp/fix.patch")),
            think("Submit it.", "<tool: submit>\n/tmp/fix.patch\n</tool>"),
        ])
        let (final, trajectory) = try await fixture.run(model)
        expectAppFix(final)
        #expect(trajectory.steps[0].reasoning == "Let me read the code first.")
        #expect(trajectory.steps[1].toolOutput?.hasPrefix("File app.py has been successfully updated at line 2 and now contains 3 lines.") == true)
        let seen = trajectory.steps[3].observation[0].content
        #expect(seen.hasPrefix("<output>\nThe following patch content is marked as your final submission:\n\n<submission>\ndiff --git a/app.py"))
        #expect(seen.contains("</submission>"))
        #expect(trajectory.steps[3].observation[0].name == "tool: submit")
    }

    @Test("the no-argument submit submits the repository's diff")
    func noArgumentSubmit() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([Self.fixEdit, think("Done.", "<tool: submit>\n</tool>")])
        let (final, _) = try await fixture.run(model)
        expectAppFix(final)
        #expect(final.submission == final.finalDiff)
    }

    @Test("a heredoc Python script edits the file, then git diff to /tmp is submitted")
    func heredocPython() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let script = """
            python3 - <<'EOF'
            import pathlib
            path = pathlib.Path("app.py")
            path.write_text(path.read_text().replace("'Hello '", "'Hi '"))
            print("patched")
            EOF
            """
        let model = ScriptedModel([
            think("A script is quickest.", bash(script)),
            bash("git diff > /tmp/fix.patch && wc -l < /tmp/fix.patch"),
            "<tool: submit>\n/tmp/fix.patch\n</tool>",
        ])
        let (final, trajectory) = try await fixture.run(model)
        expectAppFix(final)
        #expect(trajectory.steps[0].command?.stdout.text == "patched\n")
    }

    @Test("after cd into a subdirectory, edit and submit take paths relative to it")
    func relativeToShellDirectory() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            bash("cd pkg"),
            "<tool: edit>\nmod.py\n<<<<<<< SEARCH\nVALUE = 1\n=======\nVALUE = 2\n>>>>>>> REPLACE\n</tool>",
            bash("mkdir -p out && git diff > out/fix.patch"),
            "<tool: submit>\nout/fix.patch\n</tool>",
        ])
        let (final, _) = try await fixture.run(model)
        #expect(final.exitStatus == .submitted)
        #expect(final.submission?.hasPrefix("diff --git a/pkg/mod.py b/pkg/mod.py\n") == true)
        #expect(final.submission?.contains("-VALUE = 1\n+VALUE = 2\n") == true)
    }

    @Test("create in /tmp, then run it")
    func createInTmpThenRun() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            "<tool: create>\n/tmp/x.py\nimport pathlib\np = pathlib.Path('app.py')\np.write_text(p.read_text().replace(\"'Hello '\", \"'Hi '\"))\nprint('fixed by x.py')\n</tool>",
            bash("python3 /tmp/x.py"),
            bash("git diff > /tmp/fix.patch"),
            "<tool: submit>\n/tmp/fix.patch\n</tool>",
        ])
        let (final, trajectory) = try await fixture.run(model)
        #expect(trajectory.steps[0].toolOutput == "File created successfully at: /tmp/x.py (4 lines).")
        #expect(trajectory.steps[1].command?.stdout.text == "fixed by x.py\n")
        expectAppFix(final)
        // The jail's /tmp, not the host's.
        #expect(!FileManager.default.fileExists(atPath: "/tmp/x.py"))
    }

    @Test("submitting after the shell was restarted by a timeout: /tmp survives, like a container's")
    func submitAfterTimeout() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            Self.fixEdit,
            bash("git diff > /tmp/fix.patch"),
            think("Run the slow check.", bash("sleep 30")),
            think("That timed out; submit what I have.", "<tool: submit>\n/tmp/fix.patch\n</tool>"),
        ])
        var configuration = AgentConfiguration()
        configuration.limits.commandTimeoutSeconds = 1
        let (final, trajectory) = try await fixture.run(model, configuration: configuration)
        #expect(trajectory.steps[2].command?.timedOut == true)
        expectAppFix(final)
    }

    @Test("CWM's ending rule: submit, see the submission, submit again, then a final response ends the episode")
    func finalResponseEndsEpisode() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            bash("printf 'diff --git a/x b/x\\n' > /tmp/draft.patch"),
            "<tool: submit>\n/tmp/draft.patch\n</tool>",
            Self.fixEdit,
            bash("git diff > /tmp/fix.patch"),
            "<tool: submit>\n/tmp/fix.patch\n</tool>",
            think("All done.", "## Issue Summary\n\ngreet() said Hello.\n\n## Solution and Code Changes\n\nIt says Hi now."),
        ])
        var configuration = AgentConfiguration()
        configuration.submitEndsEpisode = false
        let (final, trajectory) = try await fixture.run(model, configuration: configuration)
        expectAppFix(final)
        #expect(final.steps == 6)
        #expect(final.formatErrors == 0)
        #expect(trajectory.steps[5].reasoning == "All done.")
        let requests = model.requests.withLock { $0 }
        #expect(requests[2].messages.last?.content.contains("<submission>\ndiff --git a/x b/x\n") == true)
        #expect(requests[0].messages[0].content.contains("a response without a tool call (your final summary) ends the session"))
    }

    @Test("a submitted file must exist, be non-empty and be a diff; each refusal is CWM's message")
    func submitRules() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            "<tool: submit>\n/tmp/none.patch\n</tool>",
            bash(": > /tmp/empty.patch; echo 'not a patch' > /tmp/bad.patch"),
            "<tool: submit>\n/tmp/empty.patch\n</tool>",
            "<tool: submit>\n/tmp/bad.patch\n</tool>",
            "<tool: submit>\n</tool>",
        ])
        let (final, trajectory) = try await fixture.run(model)
        #expect(final.exitStatus == .modelError)
        #expect(final.submission == nil)
        #expect(trajectory.steps[0].toolOutput == "Failed to submit /tmp/none.patch. Make sure it exists and is readable.")
        #expect(trajectory.steps[2].toolOutput == "Failed to submit /tmp/empty.patch. It is an empty file.")
        #expect(trajectory.steps[3].toolOutput == "Failed to submit /tmp/bad.patch. It is not a valid diff file.")
        #expect(trajectory.steps[4].toolOutput == "Failed to submit. The repository has no changes against its original state.")
        #expect(trajectory.steps[4].exitCode == 1)
    }

    @Test("a FIFO, a directory or a device is refused at once, never opened")
    func nonRegularFiles() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let model = ScriptedModel([
            bash("mkfifo f"),
            "<tool: edit>\nf\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n</tool>",
            "<tool: submit>\nf\n</tool>",
            "<tool: create>\nf\nx\n</tool>",
            "<tool: edit>\npkg\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n</tool>",
            "<tool: submit>\n/dev/zero\n</tool>",
        ])
        let (_, trajectory) = try await fixture.run(model)
        let outputs = trajectory.steps.map { $0.toolOutput ?? "" }
        #expect(outputs[1] == "The edit failed: f is a FIFO (named pipe), not a regular file.")
        #expect(trajectory.steps[1].durationMs < 1000)
        #expect(outputs[2] == "Failed to submit f. f is a FIFO (named pipe), not a regular file.")
        #expect(outputs[3] == "f already exists. Cannot create a new file at an existing path.")
        #expect(outputs[4] == "The edit failed: pkg is a directory, not a regular file.")
        #expect(outputs[5] == "Failed to submit /dev/zero. /dev/zero is a character device, not a regular file.")
    }

    @Test("an edit changes only the bytes it replaces: Latin-1 bytes and CRLF line endings stay")
    func byteExactEdits() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let latin1 = fixture.checkout.appendingPathComponent("latin1.py")
        let crlf = fixture.checkout.appendingPathComponent("crlf.py")
        let model = ScriptedModel([
            "<tool: edit>\nlatin1.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n</tool>",
            "<tool: edit>\ncrlf.py\n<<<<<<< SEARCH\na = 1\nb = 2\n=======\na = 1\nb = 20\n>>>>>>> REPLACE\n</tool>",
            "<tool: edit>\ncrlf.py\n<<<<<<< SEARCH\n= 3\n=======\n= 30\n>>>>>>> REPLACE\n</tool>",
        ])
        let (_, trajectory) = try await fixture.run(model) { _ in
            try Data([0x23, 0x20, 0x63, 0x61, 0x66, 0xE9, 0x0A] + Array("x = 1\n".utf8)).write(to: latin1)  // "# caf\xe9\n"
            try Data("a = 1\r\nb = 2\r\nc = 3\r\n".utf8).write(to: crlf)
        }
        #expect(try Data(contentsOf: latin1) == Data([0x23, 0x20, 0x63, 0x61, 0x66, 0xE9, 0x0A] + Array("x = 2\n".utf8)))
        #expect(try Data(contentsOf: crlf) == Data("a = 1\r\nb = 20\r\nc = 3\r\n".utf8))
        // The search text must match whole lines, as in CWM: "= 3" is only the end of one.
        #expect(trajectory.steps[2].toolOutput?.hasPrefix("No replacement was performed, the search lines did not appear verbatim in crlf.py.") == true)
    }

    @Test("file tools write only where a jailed command can: read-only places give a clear error")
    func readOnlyPlaces() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        // The jail's /etc is the host's, bound read-only: an edit that matches must still fail.
        let hostname = try String(contentsOfFile: "/etc/hostname", encoding: .utf8).split(separator: "\n").first.map(String.init) ?? ""
        let model = ScriptedModel([
            "<tool: create>\n/usr/local/warden-test.txt\nx\n</tool>",
            "<tool: create>\n/new-top-level.txt\nx\n</tool>",
            bash("ln -s /etc/hostname host-link"),
            "<tool: edit>\nhost-link\n<<<<<<< SEARCH\n\(hostname)\n=======\nx\n>>>>>>> REPLACE\n</tool>",
        ])
        let (_, trajectory) = try await fixture.run(model)
        #expect(trajectory.steps[0].toolOutput == "File creation failed: cannot create /usr/local/warden-test.txt: that place is read-only in the sandbox.")
        #expect(trajectory.steps[1].toolOutput?.contains("read-only in the sandbox") == true)
        #expect(!FileManager.default.fileExists(atPath: "/usr/local/warden-test.txt"))
        #expect(!FileManager.default.fileExists(atPath: "/new-top-level.txt"))
        // The jail's root does not own the host's /etc/hostname (and /etc is read-only besides).
        #expect(trajectory.steps[3].toolOutput == "The edit failed: cannot write host-link: permission denied, as it would be for a command in the sandbox.")
        #expect(try String(contentsOfFile: "/etc/hostname", encoding: .utf8).hasPrefix(hostname))
    }

    @Test("the file tools act with the jail's identity: its files are owned by it, others' are not writable")
    func jailIdentity() async throws {
        let fixture = try EpisodeFixture(files: Self.files)
        defer { fixture.cleanup() }
        let shell = try await fixture.prepare().environment.shell
        try await shell.withJailFiles { try $0.create("/tmp/mine.txt", content: Array("x\n".utf8)) }
        let read = try await shell.withJailFiles { files in try files.read("/tmp/mine.txt") }
        #expect(read == Array("x\n".utf8))
        try await shell.withJailFiles { try $0.create("made.txt", content: []) }
        var made = stat()
        #expect(stat(fixture.checkout.appendingPathComponent("made.txt").path, &made) == 0)
        #expect(made.st_uid == geteuid())
        // Acting as another uid (possible only as root), the checkout's root-owned directory
        // refuses a new file, as it would refuse a jailed process mapped to that uid.
        if geteuid() == 0 {
            await #expect(throws: WardenError.self) {
                try await shell.withJailFiles(identity: JailIdentity(uid: 54321, gid: 54321)) { try $0.create("other.txt", content: []) }
            }
            #expect(!FileManager.default.fileExists(atPath: fixture.checkout.appendingPathComponent("other.txt").path))
        }
    }
}
