import ArgumentParser
import Foundation
import Sandbox
import WardenCore

/// `warden shell`: the persistent jailed shell for a person, or for a script on stdin.
struct ShellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell",
        abstract: "A persistent jailed shell over a checkout, showing changed files after each command.",
        discussion: """
            On a terminal it prompts for commands; Ctrl-C interrupts the running command (the jail
            is killed and the next command starts a fresh shell in the same directory). When stdin
            is not a terminal it runs one command per line in one session and prints each result.
            """
    )

    @OptionGroup var jail: JailOptions

    @Flag(name: .long, help: "Print one JSON object per command instead of plain text.")
    var json = false

    func run() throws {
        let configuration = try jail.makeConfiguration()
        let changes = ChangeTracker(checkout: configuration.checkoutSource)
        let shell = ShellSession(configuration: configuration)
        defer { shell.close() }
        try shell.start()
        let interactive = isatty(STDIN_FILENO) == 1
        let interrupt = InterruptSignal()
        if let unavailable = changes.unavailable { writeStandardError("warden: changes not tracked: \(unavailable)\n") }
        if interactive { writeStandardError("warden shell over \(configuration.checkout) (profile \(configuration.profile.name)); exit or Ctrl-D to leave\n") }

        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        while true {
            if interactive { writeStandardError("warden:\(shell.cwd)$ ") }
            guard let line = readLine(strippingNewline: true) else { break }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if interactive && line.trimmingCharacters(in: .whitespaces) == "exit" { break }
            interrupt.reset()
            let result = try shell.run(line, timeout: jail.timeout, cancelDescriptor: interrupt.descriptor)
            let snapshot = try changes.snapshot()
            if json {
                let record = StepRecord(result: result, changes: snapshot?.sincePrevious ?? [], tree: snapshot?.treeID)
                writeStandardOutput(String(decoding: try encoder.encode(record), as: UTF8.self) + "\n")
            } else {
                print(result: result, snapshot: snapshot)
            }
            if !interactive && interrupt.received != 0 { throw ExitCode(130) }
        }
    }

    /// One command's result and the files it changed, for `--json`.
    struct StepRecord: Encodable {
        var result: CommandResult
        var changes: [FileChange]
        var tree: String?
    }

    private func print(result: CommandResult, snapshot: WorkspaceSnapshot?) {
        if let restart = result.restart { writeStandardError("[a fresh shell was started (\(restart.rawValue)); variables and functions were lost]\n") }
        writeStandardOutput(result.stdout.text)
        writeStandardError(result.stderr.text)
        if !result.stdout.text.isEmpty && !result.stdout.text.hasSuffix("\n") { writeStandardOutput("\n") }
        var status: String
        if result.timedOut { status = "timed out; the jail was killed" }
        else if result.cancelled { status = "interrupted; the jail was killed" }
        else if result.shellExited { status = "shell exited with \(result.exitCode ?? -1)" }
        else { status = "exit \(result.exitCode ?? -1)" }
        status += String(format: " · %.0f ms", result.durationMs)
        if let changed = snapshot?.sincePrevious, !changed.isEmpty {
            status += " · changed:\n" + describe(changed).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        }
        writeStandardError("[\(status)]\n")
    }
}
