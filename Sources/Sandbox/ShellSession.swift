import CJail
import Foundation
import WardenCore

/// One persistent bash process in a jail over a checkout; commands run one at a time and
/// share its state (cwd, exported variables, functions, activated environments).
///
/// Framing: the driver reads a fresh nonce and the command as NUL-terminated strings, runs
/// the command with stdin at EOF, then writes `\u{1e}NONCE:STATUS:PWD:NONCE\u{1e}` on stdout
/// and `\u{1e}NONCE::NONCE\u{1e}` on stderr. A command is complete when both markers arrived.
/// No command text can desynchronise this: the command travels as one NUL-terminated string
/// (bash strings cannot hold NUL) and its output cannot know the next nonce.
///
/// When a command times out or is cancelled, the whole jail is killed; when the shell exits,
/// its jail ends with it. Either way the next command starts a fresh jail in the last working
/// directory and its result says so (`restart`).
public final class ShellSession: @unchecked Sendable {
    public let configuration: JailConfiguration
    /// The working directory after the last command.
    public private(set) var cwd: String
    private var process: HelperProcess?
    private var pendingRestart: ShellRestart?
    private var startedOnce = false
    private var leftoverOutput: [UInt8] = []
    private var leftoverError: [UInt8] = []
    private var commandCount = 0
    /// Guards against two commands at once on one shell.
    private let busy = NSLock()
    /// Backs the jail's /tmp, so it survives restarts; removed when the session closes.
    private let temporaryDirectory = PersistentTemporaryDirectory()

    /// The driver's last `export -p` listing and what it parsed to.
    private var lastExportListing: (listing: String, exports: [String: String]) = ("", [:])

    static let driver = #"""
        exec 9<&0 8>&1 7>&2 </dev/null
        while builtin read -r -d '' -u 9 __warden_nonce && builtin read -r -d '' -u 9 __warden_command; do
          builtin eval "$__warden_command" 9<&- 8>&- 7>&-
          __warden_status=$?
          command exec 1>&8 2>&7 </dev/null
          builtin printf '\036%s:%d:%s:%s\036' "$__warden_nonce" "$__warden_status" "$PWD" "$__warden_nonce"
          builtin printf '\036%s:' "$__warden_nonce" >&2
          builtin export -p >&2
          builtin printf ':%s\036' "$__warden_nonce" >&2
        done
        """#

    public init(configuration: JailConfiguration) {
        self.configuration = configuration
        self.cwd = configuration.checkout
    }

    deinit {
        process = nil
    }

    /// Starts the jail now rather than at the first command, so set-up errors surface early.
    public func start() throws {
        busy.lock()
        defer { busy.unlock() }
        try ensureStarted()
    }

    /// Kills the jail and everything in it.
    public func close() {
        busy.lock()
        defer { busy.unlock() }
        process?.terminate()
        process = nil
        temporaryDirectory.remove()
    }

    /// Runs `body` with the running jail's helper and the working directory, starting the
    /// shell when none runs; the file tools reach the jail's filesystem through it.
    func withRunningJail<T>(_ body: (HelperProcess, String) throws -> T) throws -> T {
        busy.lock()
        defer { busy.unlock() }
        try ensureStarted()
        guard let process else { throw WardenError("jail.start", "the shell did not start") }
        return try body(process, cwd)
    }

    private func ensureStarted() throws {
        guard process == nil else { return }
        var jail = configuration
        if jail.profile.tmpfs.contains(where: { $0.target == "/tmp" }) {
            jail.temporaryDirectory = try temporaryDirectory.current(owner: jail.hostIdentity)
        }
        process = try HelperProcess.start(
            jail, arguments: ["/bin/bash", "--noprofile", "--norc", "-c", Self.driver], workingDirectory: cwd)
        if startedOnce, pendingRestart == nil { pendingRestart = .afterExit }
        startedOnce = true
    }

    /// Runs one command to completion, timeout or cancellation. The calling thread blocks;
    /// use the async overload from concurrent code.
    ///
    /// - Parameters:
    ///   - timeout: wall-clock seconds; the profile's default when nil.
    ///   - spill: also write the full, uncapped output to a file in the spill directory.
    ///   - cancelDescriptor: a descriptor that becomes readable to cancel the command.
    public func run(_ command: String, timeout: Double? = nil, spill: Bool = false, cancelDescriptor: Int32 = -1) throws -> CommandResult {
        busy.lock()
        defer { busy.unlock() }
        let clock = ContinuousClock()
        let started = clock.now
        let limits = configuration.profile.output
        var stdout = OutputCapture(headLimit: limits.headBytes, tailLimit: limits.tailBytes)
        var stderr = OutputCapture(headLimit: limits.headBytes, tailLimit: limits.tailBytes)
        var combined = OutputCapture(headLimit: limits.headBytes, tailLimit: limits.tailBytes)

        if command.utf8.contains(0) {
            let message = "warden: the command contains a NUL byte, which bash cannot represent; it was not run\n"
            stderr.append(Array(message.utf8)[...])
            combined.append(Array(message.utf8)[...])
            return CommandResult(command: command, exitCode: 2, durationMs: 0, stdout: stdout.captured,
                                 stderr: stderr.captured, combined: combined.captured, cwd: cwd)
        }
        try ensureStarted()
        guard let process else { throw WardenError("jail.start", "the shell did not start") }
        let restart = pendingRestart
        pendingRestart = nil

        commandCount += 1
        var spillFile: FileHandle?
        var spillPath: String?
        if spill, let directory = configuration.spillDirectory {
            let path = (directory as NSString).appendingPathComponent("command-\(commandCount)-\(UUID().uuidString.prefix(8)).log")
            if FileManager.default.createFile(atPath: path, contents: nil) {
                spillFile = FileHandle(forWritingAtPath: path)
                spillPath = path
            }
        }
        defer { try? spillFile?.close() }

        let nonce = Self.makeNonce()
        var pendingInput = Array(nonce.utf8) + [0] + Array(command.utf8) + [0]
        var outScanner = MarkerScanner(nonce: nonce, carriedOver: leftoverOutput)
        var errScanner = MarkerScanner(nonce: nonce, carriedOver: leftoverError, maximumPayload: 16 << 20)
        leftoverOutput = []
        leftoverError = []
        let deadline = started + .seconds(timeout ?? configuration.profile.limits.commandTimeoutSeconds)

        func emitOut(_ bytes: ArraySlice<UInt8>) {
            stdout.append(bytes)
            combined.append(bytes)
            spillFile?.write(Data(bytes))
        }
        func emitErr(_ bytes: ArraySlice<UInt8>) {
            stderr.append(bytes)
            combined.append(bytes)
            spillFile?.write(Data(bytes))
        }
        // Late output of an earlier background job counts as this command's output.
        outScanner.feed([], output: emitOut)
        errScanner.feed([], output: emitErr)

        var outOpen = true
        var errOpen = true
        var timedOut = false
        var cancelled = false
        var buffer = [UInt8](repeating: 0, count: 65536)

        while outOpen || errOpen {
            if outScanner.payload != nil && errScanner.payload != nil { break }
            if !outOpen && outScanner.payload == nil && !errOpen { break }
            let remaining = deadline - clock.now
            if remaining <= .zero {
                timedOut = true
                break
            }
            var fds: [pollfd] = []
            if !pendingInput.isEmpty { fds.append(pollfd(fd: process.input, events: Int16(POLLOUT), revents: 0)) }
            if outOpen { fds.append(pollfd(fd: process.output, events: Int16(POLLIN), revents: 0)) }
            if errOpen { fds.append(pollfd(fd: process.errorOutput, events: Int16(POLLIN), revents: 0)) }
            if cancelDescriptor >= 0 { fds.append(pollfd(fd: cancelDescriptor, events: Int16(POLLIN), revents: 0)) }
            let milliseconds = Int32(min(Double(Int32.max), max(1, (Double(remaining.components.seconds) * 1000
                + Double(remaining.components.attoseconds) / 1e15).rounded(.up))))
            let ready = poll(&fds, nfds_t(fds.count), milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw WardenError("shell.io", "poll failed: \(String(cString: strerror(errno)))")
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == cancelDescriptor {
                    cancelled = true
                } else if entry.fd == process.input {
                    if entry.revents & Int16(POLLOUT) != 0 {
                        let count = pendingInput.withUnsafeBytes { write(process.input, $0.baseAddress, $0.count) }
                        if count > 0 { pendingInput.removeFirst(count) }
                        else if count < 0 && errno != EAGAIN && errno != EINTR { pendingInput.removeAll() }
                    } else {
                        pendingInput.removeAll()  // the shell is gone; its EOF on stdout tells the rest
                    }
                } else {
                    let isOut = entry.fd == process.output
                    let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                    if count > 0 {
                        if isOut { outScanner.feed(buffer[0..<count], output: emitOut) }
                        else { errScanner.feed(buffer[0..<count], output: emitErr) }
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        if isOut { outOpen = false } else { errOpen = false }
                    }
                }
            }
            if cancelled { break }
        }

        var exitCode: Int32?
        var shellExited = false
        var exports: [String: String]?
        // The jail's cgroup counts kills at its memory limit; a jail is replaced after one, so
        // any kill happened during this command.
        let memoryKills = process.memoryCounter?.kills() ?? 0
        let outOfMemory = memoryKills == 0 ? nil
            : OutOfMemory(limitBytes: UInt64(configuration.profile.limits.memoryMB) << 20, killedProcesses: memoryKills)
        if timedOut || cancelled {
            // Kill the whole jail (background and setsid children included), keep what it printed.
            process.terminate()
            drain(process, outOpen: outOpen, errOpen: errOpen, out: &outScanner, err: &errScanner, emitOut: emitOut, emitErr: emitErr)
            self.process = nil
            pendingRestart = timedOut ? .afterTimeout : .afterCancel
        } else if let payload = outScanner.payload, errScanner.payload != nil {
            let fields = payload.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            exitCode = Int32(fields.first ?? "") ?? -1
            if fields.count == 2 { cwd = String(fields[1]) }
            // Most commands change no export: parse the listing only when it differs.
            let listing = errScanner.payload ?? ""
            if listing != lastExportListing.listing { lastExportListing = (listing, ExportListing.parse(listing)) }
            exports = lastExportListing.exports
            leftoverOutput = outScanner.leftover
            leftoverError = errScanner.leftover
            if outOfMemory != nil {
                // Any process may have been the one killed: start over, as after a timeout.
                process.terminate()
                self.process = nil
                pendingRestart = .afterOutOfMemory
                leftoverOutput = []
                leftoverError = []
            }
        } else {
            // The shell ended (exit, exec, a signal): its status is the helper's.
            shellExited = true
            process.closeInput()
            drain(process, outOpen: outOpen, errOpen: errOpen, out: &outScanner, err: &errScanner, emitOut: emitOut, emitErr: emitErr)
            exitCode = process.terminate()
            self.process = nil
            pendingRestart = outOfMemory == nil ? .afterExit : .afterOutOfMemory
        }
        let elapsed = clock.now - started
        return CommandResult(
            command: command, exitCode: exitCode, timedOut: timedOut, cancelled: cancelled, shellExited: shellExited,
            restart: restart, outOfMemory: outOfMemory,
            durationMs: Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15,
            stdout: stdout.captured, stderr: stderr.captured, combined: combined.captured, cwd: cwd, spillPath: spillPath,
            exports: exports)
    }


    /// Reads what a dead or dying jail still had in its pipes, for at most a second.
    private func drain(_ process: HelperProcess, outOpen: Bool, errOpen: Bool, out: inout MarkerScanner, err: inout MarkerScanner,
                       emitOut: (ArraySlice<UInt8>) -> Void, emitErr: (ArraySlice<UInt8>) -> Void) {
        var outOpen = outOpen
        var errOpen = errOpen
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + .seconds(1)
        while (outOpen || errOpen) && ContinuousClock.now < deadline {
            var fds: [pollfd] = []
            if outOpen { fds.append(pollfd(fd: process.output, events: Int16(POLLIN), revents: 0)) }
            if errOpen { fds.append(pollfd(fd: process.errorOutput, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), 100) <= 0 { continue }
            for entry in fds where entry.revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                let isOut = entry.fd == process.output
                if count > 0 {
                    if isOut { out.feed(buffer[0..<count], output: emitOut) } else { err.feed(buffer[0..<count], output: emitErr) }
                } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    if isOut { outOpen = false } else { errOpen = false }
                }
            }
        }
        out.flush(output: emitOut)
        err.flush(output: emitErr)
    }

    static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "x")
    }
}

extension ShellSession {
    /// Runs a command without blocking the concurrency pool: the blocking I/O loop gets a
    /// thread of its own, and cancelling the task kills the jail.
    public func run(_ command: String, timeout: Double? = nil, spill: Bool = false) async throws -> CommandResult {
        var fds: [Int32] = [-1, -1]
        guard cjail_pipe_cloexec(&fds) == 0 else {
            throw WardenError("shell.io", "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let (cancelRead, cancelWrite) = (fds[0], fds[1])
        defer {
            Glibc.close(cancelRead)
            Glibc.close(cancelWrite)
        }
        return try await withTaskCancellationHandler {
            try await onOwnThread { try self.run(command, timeout: timeout, spill: spill, cancelDescriptor: cancelRead) }
        } onCancel: {
            var byte: UInt8 = 1
            _ = write(cancelWrite, &byte, 1)
        }
    }
}
