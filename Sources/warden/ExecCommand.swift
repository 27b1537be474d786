import ArgumentParser
import Foundation
import Sandbox
import WardenCore

/// `warden exec`: one command in a fresh jail over a checkout.
struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run one command in a jail over a checkout.",
        discussion: """
            Exits with the command's exit code, 124 when it timed out and 130 when interrupted.
            A single argument after -- is run as shell text (`-- 'ls | wc -l'`); several are
            quoted word by word (`-- grep -rn "a b" src`).
            """
    )

    @OptionGroup var jail: JailOptions

    @Flag(name: .long, help: "Print one JSON object with the result and the changed files.")
    var json = false

    @Argument(parsing: .postTerminator, help: "The command, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command to run after --, e.g. `warden exec --repo . -- ls`") }
    }

    /// What `--json` prints.
    struct Report: Encodable {
        /// The status `warden exec` itself exits with: 124 on timeout, 130 when interrupted.
        var exitCode: Int32
        var timedOut: Bool
        var cancelled: Bool
        var shellExited: Bool
        var durationMs: Double
        var stdout: String
        var stderr: String
        var stdoutBytes: Int
        var stderrBytes: Int
        var stdoutDroppedBytes: Int
        var stderrDroppedBytes: Int
        var cwd: String
        var changes: [FileChange]
        var tree: String?
        var gitignoreChanged: Bool
        var changesError: String?
    }

    func run() throws {
        let configuration = try jail.makeConfiguration()
        let changes = ChangeTracker(checkout: configuration.checkoutSource)
        let shell = ShellSession(configuration: configuration)
        let interrupt = InterruptSignal()
        let result = try shell.run(shellQuote(command), timeout: jail.timeout, cancelDescriptor: interrupt.descriptor)
        shell.close()
        let snapshot = try changes.snapshot()
        let status = Self.exitStatus(of: result)

        if json {
            let report = Report(
                exitCode: status, timedOut: result.timedOut, cancelled: result.cancelled,
                shellExited: result.shellExited, durationMs: result.durationMs,
                stdout: result.stdout.text, stderr: result.stderr.text,
                stdoutBytes: result.stdout.totalBytes, stderrBytes: result.stderr.totalBytes,
                stdoutDroppedBytes: result.stdout.droppedBytes, stderrDroppedBytes: result.stderr.droppedBytes,
                cwd: result.cwd, changes: snapshot?.sinceBase ?? [], tree: snapshot?.treeID,
                gitignoreChanged: snapshot?.gitignoreChanged ?? false, changesError: changes.unavailable)
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            writeStandardOutput(String(decoding: try encoder.encode(report), as: UTF8.self) + "\n")
        } else {
            writeStandardOutput(result.stdout.text)
            writeStandardError(result.stderr.text)
            if result.timedOut { writeStandardError("warden: timed out; every process in the jail was killed\n") }
            if let unavailable = changes.unavailable { writeStandardError("warden: changes not tracked: \(unavailable)\n") }
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// The command's exit code; 124 on timeout and 130 when interrupted, as `timeout(1)` and a
    /// shell report them; 1 when the shell died without one.
    static func exitStatus(of result: CommandResult) -> Int32 {
        if result.timedOut { return 124 }
        if result.cancelled { return 130 }
        return result.exitCode ?? 1
    }
}
