import ArgumentParser
import Sandbox
import WardenCore
import Workspace

/// The `warden` command line: a thin layer that parses flags and wires the libraries.
@main
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "A jailed harness for software-engineering agents.",
        discussion: """
            Commands run in a jail (Linux namespaces, a seccomp filter, resource limits) over a
            checkout, and every change they make to files is recorded through libgit2.
            """,
        version: WardenVersion.current,
        subcommands: [
            DemoCommand.self, SolveCommand.self, RunCommand.self, MergeCommand.self, SFTCommand.self, EvalCommand.self, TasksCommand.self,
            ReportCommand.self, ShowCommand.self, ReplayCommand.self, ForkCommand.self, ServeCommand.self, SynthCommand.self,
            ExecCommand.self, ShellCommand.self, DoctorCommand.self, TraceCommand.self,
        ],
        defaultSubcommand: nil
    )

    /// The entry point: marks when it starts (`WARDEN_STARTUP_TRACE`), then parses and runs.
    /// `solve` starts its shell's jail helper and libgit2 first, so both overlap the parsing.
    static func main() async {
        StartupTrace.mark("main")
        if CommandLine.arguments.dropFirst().first == "solve" && !CommandLine.arguments.contains(where: { ["--help", "-h"].contains($0) }) {
            JailConfiguration.prestartShellHelper()
            WorkspaceTracker.initializeLibraryInBackground()
        }
        await main(nil)
    }
}

/// The release and the commit it was built from (the BuildInfo plugin reads it at build time).
enum WardenVersion {
    static let release = "0.1.0"
    static let current = "\(release) (commit \(BuildInfo.commit))"
}
