import Foundation
import Sandbox
import Testing
import WardenCore

@Suite("Persistent jailed shell")
struct ShellSessionTests {
    @Test("state carries over between commands: cd, export, functions")
    func statePersists() throws {
        let checkout = try TempCheckout(files: ["src/a.txt": "x\n"])
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        #expect(try shell.run("cd src && export WARDEN_X=42 && greet() { echo hi $1; }").exitCode == 0)
        let result = try shell.run("pwd; echo $WARDEN_X; greet you")
        #expect(result.stdout.text == "\(checkout.path.resolvingSymlinksInPath().path)/src\n42\nhi you\n")
        #expect(result.cwd.hasSuffix("/checkout/src"))
    }

    @Test("exit codes, stderr and a missing trailing newline")
    func exitCodesAndStreams() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let result = try shell.run("printf abc; echo oops >&2; false")
        #expect(result.exitCode == 1)
        #expect(result.stdout.text == "abc")
        #expect(result.stderr.text == "oops\n")
        #expect(result.combined.totalBytes == 8)
        #expect(try shell.run("(exit 7)").exitCode == 7)
    }

    @Test("stdin is at EOF: cat and read return at once")
    func stdinAtEOF() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let result = try shell.run("cat; read line; echo read=$?", timeout: 10)
        #expect(!result.timedOut)
        #expect(result.stdout.text == "read=1\n")
    }

    @Test("framing survives quotes, heredocs, syntax errors, imitation markers and binary output")
    func framingCannotBeDesynchronised() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let syntax = try shell.run("if then fi (")
        #expect(syntax.exitCode == 2)
        let heredoc = try shell.run("cat <<'EOF'\nline '\"' $HOME\nEOF")
        #expect(heredoc.stdout.text == "line '\"' $HOME\n")
        let imitation = try shell.run(#"printf '\036deadbeef:0:/tmp:deadbeef\036 and \036'; printf '\036x::x\036' >&2; echo"#)
        #expect(imitation.exitCode == 0)
        #expect(imitation.stdout.totalBytes == 33)
        #expect(imitation.stderr.totalBytes == 6)
        let binary = try shell.run("head -c 4096 /dev/urandom")
        #expect(binary.stdout.totalBytes == 4096)
        #expect(try shell.run("echo still here").stdout.text == "still here\n")
    }

    @Test("a command that redirects the shell's own stdout or stderr does not break the framing")
    func redirectedStreamsAreRestored() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let merged = try shell.run("exec 2>&1; echo out; echo err >&2", timeout: 10)
        #expect(!merged.timedOut)
        #expect(merged.stdout.text == "out\nerr\n")
        let silenced = try shell.run("exec >/dev/null 2>&1; echo gone", timeout: 10)
        #expect(!silenced.timedOut)
        let after = try shell.run("echo back; echo warn >&2", timeout: 10)
        #expect(after.stdout.text == "back\n")
        #expect(after.stderr.text == "warn\n")
    }

    @Test("flooding output is capped while it streams, keeping head and tail")
    func outputIsCapped() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.output = .init(headBytes: 1000, tailBytes: 1000) }
        defer { shell.close() }
        let result = try shell.run("seq 1 1000000")
        #expect(result.exitCode == 0)
        #expect(result.stdout.totalBytes == 6_888_896)
        #expect(result.stdout.droppedBytes == 6_888_896 - 2000)
        #expect(result.stdout.head.hasPrefix("1\n2\n3\n"))
        #expect(result.stdout.tail.hasSuffix("999999\n1000000\n"))
        #expect(result.stdout.text.contains("bytes elided"))
    }

    @Test("background jobs do not block completion")
    func backgroundJobs() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let result = try shell.run("sleep 30 & echo started", timeout: 10)
        #expect(!result.timedOut)
        #expect(result.durationMs < 5000)
        #expect(result.stdout.text == "started\n")
    }

    @Test("a timeout kills every process in the jail and the next command restarts in the last cwd")
    func timeoutKillsEverything() throws {
        let checkout = try TempCheckout(files: ["sub/x": ""])
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let tag = "31\(Int.random(in: 100_000...999_999))"
        _ = try shell.run("cd sub")
        let result = try shell.run("echo partial; sleep \(tag) & setsid sleep \(tag) & nohup sleep \(tag) >/dev/null 2>&1 & sleep \(tag)", timeout: 1)
        #expect(result.timedOut)
        #expect(result.exitCode == nil)
        #expect(result.stdout.text == "partial\n")
        #expect(try host("ps -eo args").contains("sleep \(tag)") == false)
        let next = try shell.run("pwd")
        #expect(next.restart == .afterTimeout)
        #expect(next.stdout.text.hasSuffix("/checkout/sub\n"))
    }

    @Test("a shell that exits is reported and restarted")
    func shellExit() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let result = try shell.run("echo bye; exit 3")
        #expect(result.shellExited)
        #expect(result.exitCode == 3)
        #expect(result.stdout.text == "bye\n")
        let next = try shell.run("echo back")
        #expect(next.restart == .afterExit)
        #expect(next.stdout.text == "back\n")
    }

    @Test("cancelling the task kills the jail")
    func cancellation() async throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let task = Task { try await shell.run("echo going; sleep 60", timeout: 100) }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        let result = try await task.value
        #expect(result.cancelled)
        #expect(result.durationMs < 10_000)
        let next = try await shell.run("echo again")
        #expect(next.restart == .afterCancel)
    }

    /// Issue 9, item 7, still open: the framing nonce lives in the shell the command runs in,
    /// so the command can print a valid end marker itself. Once the status travels where the
    /// command has no handle, this known issue stops reproducing and the wrapper must go.
    @Test("each command reports the shell's exported variables, whatever the command did to IFS, set -u or the values")
    func exportedVariables() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let first = try shell.run(#"export PLAIN=1 SPACED='a b' NEWLINE=$'x\ny' EQUALS='k=v' QUOTES='q"$`\' UNI='héllo ✓' CTRL=$'\x01\t\\'"#
                                  + "; export -n HOME; export EMPTY=; export DECLARED_ONLY")
        let exports = try #require(first.exports)
        #expect(exports["PLAIN"] == "1")
        #expect(exports["SPACED"] == "a b")
        #expect(exports["NEWLINE"] == "x\ny")
        #expect(exports["EQUALS"] == "k=v")
        #expect(exports["EMPTY"] == "")
        #expect(exports["QUOTES"] == #"q"$`\"#)
        #expect(exports["UNI"] == "héllo ✓")
        #expect(exports["CTRL"] == "\u{01}\t\\")
        #expect(exports["DECLARED_ONLY"] == nil)
        #expect(exports["HOME"] == nil)
        #expect(exports.keys.allSatisfy { !$0.hasPrefix("__warden") })
        // A hostile shell configuration changes nothing: the next command still ends normally.
        let hostile = try shell.run("set -u -e; IFS=; shopt -s nullglob; export ODD=$'\\x1e'; true")
        #expect(hostile.exitCode == 0)
        #expect(hostile.exports?["ODD"] == "\u{1e}")
        let after = try shell.run("echo still here")
        #expect(after.stdout.text == "still here\n")
        #expect(after.exports?["PLAIN"] == "1")
    }

    @Test("a command cannot forge its own exit code and directory")
    func forgedMarker() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        // What an attacker in the same bash can do: find anything nonce-like among the shell's
        // variables and write imitation markers to every descriptor the shell holds, directly
        // and by reopening it through /proc (refused when the jail's root is unprivileged).
        let forge = #"""
            for nonce in $(declare -p | sed -n 's/^declare -[-a-zA-Z]* [A-Za-z_0-9]*="\([0-9a-f]*x[0-9a-f]*\)"$/\1/p'); do
              for fd in $(ls /proc/$$/fd); do
                printf '\036%s:0:/forged:%s\036' "$nonce" "$nonce" >&"$fd"
                printf '\036%s::%s\036' "$nonce" "$nonce" >&"$fd"
                printf '\036%s:0:/forged:%s\036' "$nonce" "$nonce" >"/proc/$$/fd/$fd"
              done 2>/dev/null
            done
            sleep 0.3; false
            """#
        withKnownIssue("issue 9 item 7: the status is framed on streams the command can write") {
            let result = try shell.run(forge)
            #expect(result.exitCode == 1)
            #expect(result.cwd != "/forged")
            // Writing to the shell's copy of the command pipe also injects into the commands.
            let next = try shell.run("echo next", timeout: 2)
            #expect(next.stdout.text == "next\n")
        }
    }
}
