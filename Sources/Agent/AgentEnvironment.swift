import Foundation
import Sandbox
import WardenCore
import Workspace

/// What one action did, ready to be shown to the model and recorded.
public struct ToolOutcome: Sendable {
    /// The observation's body before the protocol wraps it with the budget.
    public var body: String
    public var command: CommandResult?
    /// For edit, create and submit: what the tool reported.
    public var toolOutput: String?
    public var exitCode: Int32?
    public var durationMs: Double
    /// The patch, when the action was a submission.
    public var submission: String?
    /// The jail was cancelled while the action ran.
    public var cancelled: Bool
}

/// The jailed shell, the confined file tools and the libgit2 tracker of one episode.
public final class AgentEnvironment: @unchecked Sendable {
    public let shell: ShellSession
    public let tracker: WorkspaceTracker
    public let files: ConfinedFiles
    /// Characters of output the model sees per command (half from the start, half from the end).
    let observationCharacters: Int

    public init(shell: ShellSession, tracker: WorkspaceTracker, observationCharacters: Int) {
        self.shell = shell
        self.tracker = tracker
        self.files = ConfinedFiles(root: shell.configuration.checkout)
        self.observationCharacters = observationCharacters
    }

    /// Runs one action. Tool failures (a missing file, an ambiguous edit) are outcomes the model
    /// sees; only a jail that cannot run at all throws.
    public func execute(_ action: AgentAction, timeout: Double) async throws -> ToolOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        func elapsed() -> Double {
            let duration = clock.now - started
            return Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        }
        func tool(_ text: String, exitCode: Int32, submission: String? = nil) -> ToolOutcome {
            ToolOutcome(body: text, toolOutput: text, exitCode: exitCode, durationMs: elapsed(), submission: submission, cancelled: false)
        }
        switch action {
        case let .bash(command):
            let result = try await shell.run(command, timeout: timeout)
            return ToolOutcome(body: ObservationBody.render(result, observationCharacters: observationCharacters), command: result, exitCode: result.exitCode, durationMs: result.durationMs,
                               cancelled: result.cancelled)
        case let .edit(path, search, replace):
            do {
                let original = String(decoding: try files.read(path, cwd: shell.cwd), as: UTF8.self)
                let occurrences = original.components(separatedBy: search).count - 1
                guard occurrences == 1 else {
                    return tool(occurrences == 0
                        ? "edit failed: the search text does not occur in \(path); nothing was changed. Copy it exactly, whitespace included."
                        : "edit failed: the search text occurs \(occurrences) times in \(path); include more surrounding lines so it occurs once.",
                        exitCode: 1)
                }
                try files.overwrite(path, cwd: shell.cwd, with: Data(original.replacingOccurrences(of: search, with: replace).utf8))
                return tool("Edited \(path): replaced \(search.split(separator: "\n", omittingEmptySubsequences: false).count) line(s) with \(replace.split(separator: "\n", omittingEmptySubsequences: false).count).", exitCode: 0)
            } catch let error as WardenError {
                return tool("edit failed: \(error.message)", exitCode: 1)
            }
        case let .create(path, content):
            do {
                try files.create(path, cwd: shell.cwd, with: Data(content.utf8))
                return tool("Created \(path) (\(content.utf8.count) bytes).", exitCode: 0)
            } catch let error as WardenError {
                return tool("create failed: \(error.message)", exitCode: 1)
            }
        case let .submit(path):
            if let path {
                do {
                    let patch = String(decoding: try files.read(path, cwd: shell.cwd), as: UTF8.self)
                    return tool("Submitted the patch file \(path) (\(patch.utf8.count) bytes).", exitCode: 0, submission: patch)
                } catch let error as WardenError {
                    return tool("submit failed: \(error.message)", exitCode: 1)
                }
            }
            let diff = try tracker.diff()
            let files = diff.components(separatedBy: "\ndiff --git ").count - (diff.isEmpty ? 1 : 0)
            return tool("Submitted the diff against the base (\(files) file(s) changed).", exitCode: 0, submission: diff)
        }
    }
}

/// How a command's result reads to the model: the output cut to the budget as head and tail
/// with a marker, then the exit code and duration, and what happened to the shell. Shared by
/// the agent loop and the SFT export, which rebuilds observations from trajectories.
public enum ObservationBody {
    public static func render(_ result: CommandResult, observationCharacters: Int) -> String {
        var lines: [String] = []
        if let restart = result.restart {
            let reason = switch restart {
            case .afterTimeout: "the previous command timed out"
            case .afterExit: "the previous shell exited"
            case .afterCancel: "the previous command was cancelled"
            case .afterOutOfMemory: "the previous command ran out of memory"
            }
            lines.append("[a fresh shell was started in \(result.cwd) because \(reason); variables, functions and background jobs were lost]")
        }
        let output = truncate(result.combined.text, to: observationCharacters)
        lines.append(output.isEmpty ? "(no output)" : output)
        let seconds = String(format: "%.2f s", result.durationMs / 1000)
        if let memory = result.outOfMemory {
            lines.append("[the command ran out of memory: the jail's limit is \(memory.limitBytes >> 20) MB for all its processes together, "
                + "and the kernel killed \(memory.killedProcesses) process(es); exit code \(result.exitCode.map(String.init) ?? "none") after \(seconds). "
                + "Every process was stopped; the next command starts a fresh shell in \(result.cwd)]")
        } else if result.timedOut {
            lines.append("[the command timed out after \(seconds) and every process it started was killed; the next command starts a fresh shell in \(result.cwd)]")
        } else if result.cancelled {
            lines.append("[the command was cancelled after \(seconds)]")
        } else if result.shellExited {
            lines.append("[the shell exited with code \(result.exitCode ?? -1) after \(seconds); the next command starts a fresh shell in \(result.cwd)]")
        } else {
            lines.append("[exit code \(result.exitCode ?? -1), \(seconds)]")
        }
        return lines.joined(separator: "\n")
    }

    static func truncate(_ text: String, to characters: Int) -> String {
        guard text.count > characters else { return text.hasSuffix("\n") ? String(text.dropLast()) : text }
        let half = characters / 2
        let elided = text.count - 2 * half
        return String(text.prefix(half)) + "\n[... \(elided) characters elided ...]\n" + String(text.suffix(half))
    }
}
