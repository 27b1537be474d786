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

    /// Issue 9, item 7: the nonce is in reach of every process the shell forks (variables,
    /// saved descriptors), so it cannot authenticate a status. Reports are accepted only from
    /// the shell's own pid, and the cwd is read from /proc, so this forgery must fail.
    @Test("a command cannot forge its own exit code and directory")
    func forgedMarker() throws {
        let checkout = try TempCheckout(files: ["sub/x": ""])
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        // What an attacker can do: find anything nonce-like among the shell's variables, then,
        // from background subshells (which hold every descriptor the shell holds, saved copies
        // of the status socket and streams included), write imitation markers and status
        // reports in the real format to every descriptor, directly and by reopening them
        // through /proc, while the command runs and after it returned. The shell itself
        // writes imitation markers too. (A report in the real format written by the shell's
        // own builtins is the command choosing its status; see ShellSession.)
        let forge = #"""
            nonces=$(declare -p | sed -n 's/^declare -[-a-zA-Z]* [A-Za-z_0-9]*="\([0-9a-f]*x[0-9a-f]*\)"$/\1/p')
            spray() {
              for nonce in $nonces; do
                for fd in $(ls /proc/$$/fd); do
                  printf '\036%s:0:/forged:%s\036' "$nonce" "$nonce" >&"$fd"
                  printf '\036%s::%s\036' "$nonce" "$nonce" >&"$fd"
                  if [ "$1" = report ]; then
                    printf '%s\0' "" "$nonce" 0 "$nonce" >&"$fd"
                    printf '%s\0' "" "$nonce" 0 "$nonce" >"/proc/$$/fd/$fd"
                  fi
                done 2>/dev/null
              done
            }
            ( spray report ) & ( sleep 0.2; spray report ) & ( sleep 1.5; spray report ) &
            spray; cd sub; sleep 0.5; false
            """#
        let result = try shell.run(forge, timeout: 10)
        #expect(!result.timedOut)
        #expect(result.exitCode == 1)
        #expect(result.cwd == checkout.path.resolvingSymlinksInPath().path + "/sub")
        let next = try shell.run("sleep 2; echo next; (exit 4)", timeout: 10)
        #expect(next.exitCode == 4)
        #expect(next.stdout.text.hasSuffix("next\n"))
        #expect(next.cwd.hasSuffix("/sub"))
    }

    @Test("the exported environment is recorded after each command, values verbatim")
    func exportsAreRecorded() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let tricky = "a b\n\u{1e}c=d\"$x'\\`é\t"
        let result = try shell.run(#"export WARDEN_A=1 WARDEN_B=$'a b\n\036c=d"$x\'\\`é\t' WARDEN_C='q"$\`' WARDEN_D; "#
                                   + "WARDEN_LOCAL=2; export -n HOME")
        let exports = try #require(result.exports)
        #expect(exports["WARDEN_A"] == "1")
        #expect(exports["WARDEN_B"] == tricky)
        #expect(exports["WARDEN_C"] == "q\"$\\`")
        #expect(exports["WARDEN_D"] == nil)
        #expect(exports["WARDEN_LOCAL"] == nil)
        #expect(exports["HOME"] == nil)
        #expect(exports["PATH"] != nil)
        #expect(try shell.run("unset WARDEN_A").exports?["WARDEN_A"] == nil)
    }

    @Test("a session started in a recorded state has that cwd and those exports")
    func startsInGivenState() throws {
        let checkout = try TempCheckout(files: ["sub/x": ""])
        defer { checkout.cleanup() }
        let first = try makeShell(checkout)
        defer { first.close() }
        let recorded = try first.run("cd sub && export WARDEN_FORKED='x y'")
        let exports = try #require(recorded.exports)
        let fork = ShellSession(configuration: first.configuration, initialState: ShellState(cwd: recorded.cwd, exports: exports))
        defer { fork.close() }
        let result = try fork.run(#"pwd; echo "$WARDEN_FORKED"; bash -c 'echo "$WARDEN_FORKED"'"#)
        #expect(result.restart == nil)
        #expect(result.stdout.text == "\(recorded.cwd)\nx y\nx y\n")
        #expect(result.cwd == recorded.cwd)
        #expect(result.exports?["WARDEN_FORKED"] == "x y")
    }
}
