/// Output of one stream, capped while it streamed: the first and last bytes, and a count of the rest.
public struct CapturedOutput: Sendable, Codable, Hashable {
    /// The first bytes, decoded as UTF-8 (invalid sequences replaced).
    public var head: String
    /// The last bytes, when the output was longer than the head; empty otherwise.
    public var tail: String
    /// Every byte the stream produced.
    public var totalBytes: Int
    /// Bytes kept neither in the head nor in the tail.
    public var droppedBytes: Int

    public init(head: String = "", tail: String = "", totalBytes: Int = 0, droppedBytes: Int = 0) {
        self.head = head
        self.tail = tail
        self.totalBytes = totalBytes
        self.droppedBytes = droppedBytes
    }

    /// Head and tail joined by a marker that says how much was left out.
    public var text: String {
        if droppedBytes == 0 { return head + tail }
        return head + "\n[... \(droppedBytes) bytes elided ...]\n" + tail
    }
}

/// Why the jailed shell had to be started again before a command.
public enum ShellRestart: String, Sendable, Codable, Hashable {
    /// The previous command hit its wall-clock timeout and the jail was killed.
    case afterTimeout = "after_timeout"
    /// The shell itself exited (for example `exit 3`) or was killed.
    case afterExit = "after_exit"
    /// The previous command was cancelled and the jail was killed.
    case afterCancel = "after_cancel"
    /// The previous command ran the jail out of memory and the jail was killed.
    case afterOutOfMemory = "after_out_of_memory"
}

/// A command during which the kernel killed processes because the jail reached its memory
/// limit (every process of the jail together).
public struct OutOfMemory: Sendable, Codable, Hashable {
    /// The jail's memory limit.
    public var limitBytes: UInt64
    /// Processes the kernel killed at the limit.
    public var killedProcesses: Int

    public init(limitBytes: UInt64, killedProcesses: Int) {
        self.limitBytes = limitBytes
        self.killedProcesses = killedProcesses
    }
}

/// The outcome of one command in the jailed shell. A non-zero exit or a timeout is a value here.
public struct CommandResult: Sendable, Codable, Hashable {
    public var command: String
    /// The command's exit status; for a shell that exited, the shell's status (128+N when killed
    /// by signal N); nil when the command timed out or was cancelled.
    public var exitCode: Int32?
    public var timedOut: Bool
    public var cancelled: Bool
    /// True when the shell process ended during this command (`exit`, `exec`, a fatal signal).
    public var shellExited: Bool
    /// Set when a fresh shell had to be started for this command, and why.
    public var restart: ShellRestart?
    /// Set when the jail ran out of memory during the command; the jail was then killed and
    /// the next command starts a fresh shell.
    public var outOfMemory: OutOfMemory?
    public var durationMs: Double
    public var stdout: CapturedOutput
    public var stderr: CapturedOutput
    /// Both streams in the order their bytes reached the harness, capped like each stream.
    public var combined: CapturedOutput
    /// The working directory after the command (the last known one if the shell died), read
    /// from the shell process by the harness, not reported by it.
    public var cwd: String
    /// The shell's exported variables after the command; nil when the command did not finish
    /// in a live shell (timeout, cancellation, shell exit).
    public var exports: [String: String]?
    /// The file holding the command's full output, when spilling was asked for.
    public var spillPath: String?

    public init(
        command: String, exitCode: Int32?, timedOut: Bool = false, cancelled: Bool = false,
        shellExited: Bool = false, restart: ShellRestart? = nil, outOfMemory: OutOfMemory? = nil, durationMs: Double,
        stdout: CapturedOutput, stderr: CapturedOutput, combined: CapturedOutput,
        cwd: String, exports: [String: String]? = nil, spillPath: String? = nil
    ) {
        self.command = command
        self.exitCode = exitCode
        self.timedOut = timedOut
        self.cancelled = cancelled
        self.shellExited = shellExited
        self.restart = restart
        self.outOfMemory = outOfMemory
        self.durationMs = durationMs
        self.stdout = stdout
        self.stderr = stderr
        self.combined = combined
        self.cwd = cwd
        self.exports = exports
        self.spillPath = spillPath
    }
}

/// What a fresh shell needs to continue where another left off: its working directory and
/// exported environment (a fork of an episode starts its jail in this state).
public struct ShellState: Sendable, Codable, Hashable {
    public var cwd: String
    public var exports: [String: String]

    public init(cwd: String, exports: [String: String]) {
        self.cwd = cwd
        self.exports = exports
    }
}
