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

/// The jailed shell, its file tools and the libgit2 tracker of one episode.
public final class AgentEnvironment: @unchecked Sendable {
    public let shell: ShellSession
    public let tracker: WorkspaceTracker
    /// The host ids the jail's root maps to; edit, create and submit act as them.
    public let identity: JailIdentity
    /// Characters of output the model sees per command (half from the start, half from the end).
    let observationCharacters: Int

    public init(shell: ShellSession, tracker: WorkspaceTracker, observationCharacters: Int) {
        self.shell = shell
        self.tracker = tracker
        self.identity = shell.configuration.hostIdentity
        self.observationCharacters = observationCharacters
    }

    /// Runs one action. Tool failures (a missing file, an ambiguous edit, a patch that is not a
    /// diff) are outcomes the model sees; only a jail that cannot run at all throws.
    public func execute(_ action: AgentAction, timeout: Double) async throws -> ToolOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        func tool(_ result: ToolResult) -> ToolOutcome {
            let duration = clock.now - started
            return ToolOutcome(body: result.text, toolOutput: result.text, exitCode: result.succeeded ? 0 : 1,
                               durationMs: Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15,
                               submission: result.submission, cancelled: false)
        }
        switch action {
        case let .bash(command):
            let result = try await shell.run(command, timeout: timeout)
            return ToolOutcome(body: ObservationBody.render(result, observationCharacters: observationCharacters), command: result, exitCode: result.exitCode, durationMs: result.durationMs,
                               cancelled: result.cancelled)
        case let .edit(path, search, replace):
            return tool(try await inJail { try FileTools.edit(path, search: search, replace: replace, in: $0) })
        case let .create(path, content):
            return tool(try await inJail { try FileTools.create(path, content: content, in: $0) })
        case let .submit(path?):
            return tool(try await inJail { try FileTools.submit(path, in: $0) })
        case .submit(nil):
            // A checkout that cannot be diffed is the agent's doing (see Episode.step).
            do { return tool(FileTools.submission(try tracker.diff(), source: nil)) } catch {
                return tool(ToolResult(text: FileTools.untrackable((error as? WardenError)?.message ?? "\(error)"), succeeded: false))
            }
        }
    }

    /// Runs a file tool against the jail's filesystem. A jail whose root cannot be reached (its
    /// shell died just now) is a tool failure the model sees; a jail that cannot start throws.
    private func inJail(_ body: @escaping @Sendable (JailFiles) throws -> ToolResult) async throws -> ToolResult {
        do {
            return try await shell.withJailFiles(identity: identity, body)
        } catch let error as WardenError where error.code.hasPrefix("files.") {
            return ToolResult(text: "The file tool failed: \(error.message)", succeeded: false)
        }
    }
}

/// What a file tool reports.
struct ToolResult: Sendable {
    var text: String
    var succeeded: Bool
    var submission: String?
}

/// edit, create and submit with CWM's rules and CWM's wording, so a model trained in CWM's
/// environment reads the feedback it knows.
enum FileTools {
    /// What the agent is told when the checkout cannot be scanned or diffed.
    static func untrackable(_ cause: String) -> String {
        "warden: the checkout's changes cannot be recorded (\(cause)). Undo what caused this: until then nothing in the checkout can be diffed or submitted."
    }

    static func edit(_ path: String, search: String, replace: String, in files: JailFiles) throws -> ToolResult {
        var result = ToolResult(text: "", succeeded: false)
        do {
            try files.update(path) { original in
                switch SearchReplace.apply(to: original, search: search, replace: replace) {
                case let .success(applied):
                    let (snippet, lines) = SearchReplace.snippet(applied.content, line: applied.line, replace: replace)
                    result = ToolResult(text: "File \(path) has been successfully updated at line \(applied.line) and now contains \(lines) lines. "
                        + "The surrounding lines after the edit are shown below:\n\(snippet)\nReview the changes and make sure they are as expected.",
                        succeeded: true)
                    return applied.content
                case let .failure(.notFound(hint)):
                    result.text = "No replacement was performed, the search lines did not appear verbatim in \(path)."
                        + (hint ? " The search lines must exactly match one or more consecutive lines from the file, with indentations preserved." : "")
                    throw Unchanged()
                case let .failure(.ambiguous(lines)):
                    result.text = "No replacement was performed. Multiple occurrences of the search text in lines \(lines) of \(path). Please ensure it is unique."
                    throw Unchanged()
                }
            }
        } catch is Unchanged {
        } catch let error as WardenError where error.code == "files.missing" {
            result.text = "The path \(path) does not exist. Please provide a valid path."
        } catch let error as WardenError where error.code.hasPrefix("files.") {
            result = ToolResult(text: "The edit failed: \(error.message).", succeeded: false)
        }
        return result
    }

    static func create(_ path: String, content: String, in files: JailFiles) throws -> ToolResult {
        do {
            try files.create(path, content: Array(content.utf8))
        } catch let error as WardenError where error.code == "files.exists" {
            return ToolResult(text: "\(path) already exists. Cannot create a new file at an existing path.", succeeded: false)
        } catch let error as WardenError where error.code.hasPrefix("files.") {
            return ToolResult(text: "File creation failed: \(error.message).", succeeded: false)
        }
        // CWM counts the lines of the content as written, before Warden's final newline.
        let written = content.hasSuffix("\n") ? content.dropLast() : Substring(content)
        let lines = written.utf8.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        return ToolResult(text: "File created successfully at: \(path) (\(lines) lines).", succeeded: true)
    }

    static func submit(_ path: String, in files: JailFiles) throws -> ToolResult {
        let bytes: [UInt8]
        do {
            bytes = try files.read(path)
        } catch let error as WardenError where error.code == "files.type" {
            return ToolResult(text: "Failed to submit \(path). \(error.message).", succeeded: false)
        } catch let error as WardenError where error.code.hasPrefix("files.") {
            return ToolResult(text: "Failed to submit \(path). Make sure it exists and is readable.", succeeded: false)
        }
        guard let patch = String(validating: bytes, as: UTF8.self) else {
            return ToolResult(text: "Failed to submit \(path). It is not UTF-8 text, so it cannot be recorded without changing it.", succeeded: false)
        }
        return submission(patch, source: path)
    }

    /// CWM's submit checks (non-empty, starts with `diff`) and its feedback after a success.
    /// `source` is the patch file, nil for the repository's diff against its base.
    static func submission(_ patch: String, source: String?) -> ToolResult {
        let name = source.map { " \($0)" } ?? ""
        if patch.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return ToolResult(text: source == nil
                ? "Failed to submit. The repository has no changes against its original state."
                : "Failed to submit\(name). It is an empty file.", succeeded: false)
        }
        guard patch.hasPrefix("diff") else {
            return ToolResult(text: "Failed to submit\(name). It is not a valid diff file.", succeeded: false)
        }
        return ToolResult(text: "The following patch content is marked as your final submission:\n\n<submission>\n\(patch)\n</submission>\n\n"
            + "Review the patch content and ensure it correctly resolves the issue. If necessary, you can continue refining the patch and submit an updated version.",
            succeeded: true, submission: patch)
    }

    private struct Unchanged: Error {}
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
            lines.append("[a fresh shell was started in \(result.cwd) because \(reason); exported variables were kept; other variables, functions and background jobs were lost]")
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
