import ArgumentParser
import Foundation
import Report

/// `warden report`: the HTML report of one or more run directories.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report of run directories: summary, runs side by side, a task table, a viewer per attempt.",
        discussion: """
            OUT is one self-contained page (no network, opens from file://): per run the resolved rate,
            pass@1 and pass@k, exit statuses, tokens and time with small charts; the tasks that flipped
            between runs; a sortable, filterable task table. Beside it, OUT-attempts/ holds one viewer page
            per attempt (steps, output, exit codes, changed files, the patch, the scoring), opened from the
            table, so a large run loads one small page first.
            """
    )

    @OptionGroup var logging: LoggingOptions

    @Argument(help: "Run directories of `warden run`.")
    var runs: [String]

    @Option(name: .long, help: "The report page.")
    var out: String = "report.html"

    @Flag(name: .long, help: "Write the summary page only, without a viewer page per attempt.")
    var summaryOnly = false

    func run() async throws {
        try logging.bootstrap()
        let writer = ReportWriter(runs: runs.map { URL(fileURLWithPath: $0) }, out: URL(fileURLWithPath: out), attemptPages: !summaryOnly)
        let output = try await writer.write()
        var text = "wrote \(output.page.path) (\(output.pageBytes / 1024) KiB)"
        if output.tablePages > 1 { text += " with the task table in \(output.tablePages) pages" }
        if !summaryOnly { text += " and \(output.attemptPages) attempt page(s) in \(output.attemptsDirectory.path)" }
        if output.unreadableTrajectories > 0 { text += "; \(output.unreadableTrajectories) trajectory(ies) could not be read (see their pages)" }
        writeStandardOutput(text + "\n")
    }
}
