import Agent
import ArgumentParser
import Foundation
import Report
import WardenCore

/// `warden show`: a trajectory, readably.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a trajectory: its steps, commands, exit codes, changed files and final diff (--html: as a page)."
    )

    @Argument(help: "A trajectory.jsonl file.")
    var trajectory: String

    @Option(name: .long, help: "Lines of output to show per step.")
    var lines: Int = 20

    @Flag(name: .long, help: "Print the trajectory as one self-contained HTML page (the report's viewer) instead.")
    var html = false

    func run() throws {
        if html {
            writeStandardOutput(try trajectoryHTML(URL(fileURLWithPath: trajectory)))
            return
        }
        let recorded = try Trajectory.read(URL(fileURLWithPath: trajectory))
        let header = recorded.header
        var text = """
            task      \(header.task.instanceID)
            model     \(header.model)   protocol \(header.configuration.protocol)   profile \(header.sandboxProfile)
            base      \(header.baseCommit)\(header.sourceRepository.map { " of \($0)" } ?? "")
            started   \(header.startedAt)   warden \(header.wardenVersion)

            """
        for step in recorded.steps {
            text += "\n── step \(step.index)  \(step.startedAt)"
            if let model = step.response.model { text += "  [\(model)]" }
            if let tokens = step.response.completionTokens { text += "  \(tokens) tokens" }
            text += "\n"
            if let reasoning = step.reasoning, !reasoning.isEmpty {
                text += reasoning.split(separator: "\n").prefix(8).map { "  │ \($0)\n" }.joined()
            }
            if let problem = step.formatError {
                text += "  format error: \(problem)\n"
                continue
            }
            if let action = step.action { text += describe(action) + "\n" }
            if let review = step.review { text += "  (\(review.rawValue) by the operator)\n" }
            let output = step.command?.combined.text ?? step.toolOutput ?? ""
            let outputLines = output.split(separator: "\n", omittingEmptySubsequences: false)
            text += outputLines.prefix(lines).joined(separator: "\n") + "\n"
            if outputLines.count > lines { text += "  … \(outputLines.count - lines) more lines\n" }
            var status = "  [exit \(step.exitCode.map(String.init) ?? "-") · " + String(format: "%.2f s", step.durationMs / 1000)
            if step.command?.timedOut == true { status += " · timed out" }
            text += status + "]\n"
            if !step.changes.isEmpty { text += "  changed: " + step.changes.map { "\($0.status.rawValue) \($0.path)" }.joined(separator: ", ") + "\n" }
        }
        if let final = recorded.final {
            text += "\n── \(final.exitStatus.rawValue)\(final.detail.map { " (\($0))" } ?? "") after \(final.steps) steps, "
            text += "\(final.formatErrors) format errors, \(final.promptTokens) prompt + \(final.completionTokens) completion tokens, "
            text += String(format: "%.1f s", final.wallTimeMs / 1000) + "\n"
            if !final.modelVersions.isEmpty { text += "model versions: \(final.modelVersions.joined(separator: ", "))\n" }
            text += final.submission == nil ? "no submission; final diff:\n" : "submission:\n"
            text += final.submission ?? final.finalDiff
        } else {
            text += "\n── no final record: the episode did not finish (killed?)\n"
        }
        if !recorded.damagedLines.isEmpty {
            text += "\nunreadable lines: \(recorded.damagedLines.map(String.init).joined(separator: ", "))\n"
        }
        writeStandardOutput(text.hasSuffix("\n") ? text : text + "\n")
    }
}
