import CJail
import Foundation
import WardenCore

/// One persistent bash process in a jail over a checkout; commands run one at a time and
/// share its state (cwd, exported variables, functions, activated environments).
///
/// Framing: the driver reads a fresh nonce and the command as NUL-terminated strings, runs
/// the command with stdin at EOF, then writes `\u{1e}NONCE::NONCE\u{1e}` on stdout and on
/// stderr (so every byte of output before it has been read) and the command's status and
/// exported variables on the status socket. A command is complete when all three arrived.
/// No command text can desynchronise this: the command travels as one NUL-terminated string
/// (bash strings cannot hold NUL) and its output cannot know the next nonce.
///
/// Why the status cannot be forged (issue 9 item 7). Anything the shell holds, every process it
/// forks holds too (saved descriptors, memory with the nonce), so a secret or a descriptor
/// cannot tell the driver from the command. The status socket does instead: it is an AF_UNIX
/// stream with SO_PASSCRED on the harness's end, so the kernel stamps every write with the
/// writing process's pid, and bytes from different writers are never merged into one read.
/// The harness accepts status bytes only from the shell's own pid (read from the helper's
/// child list, outside the jail); a background job, a subshell, an exec'd program or a late
/// writer has another pid and is ignored. No jailed process can claim another pid
/// (SCM_CREDENTIALS with a foreign pid needs CAP_SYS_ADMIN, and the jail has no capabilities).
/// The working directory is not reported at all: the harness reads `/proc/<shell>/cwd`.
/// What remains: code running as the shell process itself (a builtin or function of the
/// command, `enable -f`, `exec` of another program, a trap or function it left behind for
/// later commands) can choose the status of the commands it runs, as `exit`-like builtins and
/// functions legitimately do; it cannot choose the cwd, and the record of the command can
/// only be its own doing, visible in the commands the model sent.
///
/// When a command times out or is cancelled, the whole jail is killed; when the shell exits,
/// its jail ends with it. Either way the next command starts a fresh jail in the last working
/// directory with the last exports, and its result says so (`restart`).
public final class ShellSession: @unchecked Sendable {
    public let configuration: JailConfiguration
    /// The working directory after the last command.
    public private(set) var cwd: String
    /// The exported variables after the last command that finished (or the initial state's).
    public private(set) var exports: [String: String]
    private var process: HelperProcess?
    /// The harness's end of the status socket and the host pid of the shell allowed to write it.
    private var statusSocket: Int32 = -1
    private var shellPid: pid_t = 0
    private var pendingRestart: ShellRestart?
    private var startedOnce = false
    private var leftoverOutput: [UInt8] = []
    private var leftoverError: [UInt8] = []
    private var commandCount = 0
    /// Guards against two commands at once on one shell.
    private let busy = NSLock()
    /// Backs the jail's /tmp, so it survives restarts; removed when the session closes.
    private let temporaryDirectory = PersistentTemporaryDirectory()
    /// An image jail's writable layer, kept across restarts like /tmp; removed when the session closes.
    private let layerDirectory = PersistentTemporaryDirectory(prefix: "warden-layer-")

    /// Fd 3 is the status socket; the driver keeps it (and the command pipe and streams) on
    /// fds 6-9, closed while the command runs so exec'd programs do not even inherit them.
    /// Exported variables come from `export -p` (a builtin, about 0.08 ms; a loop over
    /// names cost 1.8 ms), parsed by `ExportListing`.
    static let driver = #"""
        exec 9<&0 8>&1 7>&2 6>&3 3>&- </dev/null
        while builtin read -r -d '' -u 9 __warden_nonce && builtin read -r -d '' -u 9 __warden_command; do
          builtin eval "$__warden_command" 9<&- 8>&- 7>&- 6>&-
          __warden_status=$?
          command exec 1>&8 2>&7 </dev/null
          builtin printf '\036%s::%s\036' "$__warden_nonce" "$__warden_nonce"
          builtin printf '\036%s::%s\036' "$__warden_nonce" "$__warden_nonce" >&2
          builtin export -p >&6
          builtin printf '\0%s\0%s\0' "$__warden_status" "$__warden_nonce" >&6
        done
        """#

    /// - Parameter initialState: the cwd and exports the first shell starts with (a fork of
    ///   another session); the checkout and the profile's environment when nil.
    public init(configuration: JailConfiguration, initialState: ShellState? = nil) {
        self.configuration = configuration
        self.cwd = initialState?.cwd ?? configuration.checkout
        self.exports = initialState?.exports ?? [:]
    }

    deinit {
        process = nil
        closeStatusSocket()
    }

    private func closeStatusSocket() {
        if statusSocket >= 0 { Glibc.close(statusSocket) }
        statusSocket = -1
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
        closeStatusSocket()
        temporaryDirectory.remove()
        layerDirectory.remove()
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
        if jail.image != nil && jail.profile.imageRoot == .overlay {
            jail.layerDirectory = try layerDirectory.overlayLayer(owner: jail.hostIdentity)
        }
        // The state left by the last command (or given to a fork) carries into the new shell.
        jail.profile.environment.merge(exports) { $1 }
        closeStatusSocket()
        let arguments = ["/bin/bash", "--noprofile", "--norc", "-c", Self.driver]
        let started: HelperProcess
        if let prestarted = PrestartedShellHelper.take(path: jail.helperPath) {
            statusSocket = prestarted.statusSocket
            started = try HelperProcess.start(jail, arguments: arguments, workingDirectory: cwd, on: prestarted)
        } else {
            var pair: [Int32] = [-1, -1]
            guard cjail_credential_socketpair(&pair) == 0 else {
                throw WardenError("jail.start", "cannot create the status socket: \(String(cString: strerror(errno)))")
            }
            defer { Glibc.close(pair[1]) }
            _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
            statusSocket = pair[0]
            started = try HelperProcess.start(jail, arguments: arguments, workingDirectory: cwd, passing: pair[1])
        }
        guard let pid = started.jailedProgramPid() else {
            started.terminate()
            throw WardenError("jail.start", "cannot find the jailed shell's pid in /proc/\(started.pid)/task/\(started.pid)/children "
                              + "(the kernel needs CONFIG_PROC_CHILDREN); without it the shell's status cannot be authenticated")
        }
        shellPid = pid
        process = started
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
        var errScanner = MarkerScanner(nonce: nonce, carriedOver: leftoverError)
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

        var status = StatusReader(nonce: nonce, shellPid: shellPid)
        var outOpen = true
        var errOpen = true
        var statusOpen = true
        var timedOut = false
        var cancelled = false
        var buffer = [UInt8](repeating: 0, count: 65536)

        while outOpen || errOpen {
            if outScanner.payload != nil && errScanner.payload != nil && status.report != nil { break }
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
            if statusOpen { fds.append(pollfd(fd: statusSocket, events: Int16(POLLIN), revents: 0)) }
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
                } else if entry.fd == statusSocket {
                    if !status.receive(from: statusSocket, into: &buffer) { statusOpen = false }
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
        var finishedExports: [String: String]?
        var shellExited = false
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
        } else if let report = status.report, outScanner.payload != nil, errScanner.payload != nil {
            exitCode = report.exitCode
            exports = report.exports
            finishedExports = report.exports
            // Observed, not reported: the shell's own working directory as the kernel has it.
            if let observed = Self.workingDirectory(of: shellPid) { cwd = observed }
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
            stdout: stdout.captured, stderr: stderr.captured, combined: combined.captured, cwd: cwd, exports: finishedExports,
            spillPath: spillPath)
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

    /// `/proc/PID/cwd` as the jail sees it (the checkout is bound at its real path).
    static func workingDirectory(of pid: pid_t) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/\(pid)/cwd", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? nil : path
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

/// Collects the shell's end-of-command report from the status socket: NUL-terminated fields
/// `EXPORT-LISTING STATUS NONCE` (the listing is `export -p` output, which holds no NUL; two
/// writes, each a wake-up of the harness). Bytes written by any process other than the shell are
/// dropped, so nothing but the shell process itself can complete a command or set its status.
struct StatusReader {
    struct Report {
        var exitCode: Int32
        var exports: [String: String]
    }

    let nonce: String
    let shellPid: pid_t
    private var bytes: [UInt8] = []
    private(set) var report: Report?
    /// Reads from processes other than the shell (forgery attempts, or a shell's child holding
    /// a saved copy of the socket).
    private(set) var foreignWrites = 0

    init(nonce: String, shellPid: pid_t) {
        self.nonce = nonce
        self.shellPid = shellPid
    }

    /// Reads what is available; false at end of file (the shell is gone).
    mutating func receive(from socket: Int32, into buffer: inout [UInt8]) -> Bool {
        var sender: pid_t = 0
        let count = buffer.withUnsafeMutableBytes { cjail_receive_from(socket, $0.baseAddress, $0.count, &sender) }
        if count == 0 { return false }
        if count < 0 { return errno == EAGAIN || errno == EINTR }
        guard sender == shellPid else {
            foreignWrites += 1
            return true
        }
        if report == nil {
            bytes += buffer[0..<count]
            parse()
        }
        return true
    }

    private mutating func parse() {
        let fields = Array(bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast())
        // The first complete report for this nonce counts; the listing is the field before the status.
        let nonceBytes = Array(nonce.utf8)
        guard let end = fields.firstIndex(where: { $0.elementsEqual(nonceBytes) }), end >= 2 else { return }
        let exports = ExportListing.parse(Array(fields[end - 2]))
        let exitCode = Int32(String(decoding: fields[end - 1], as: UTF8.self)) ?? -1
        report = Report(exitCode: exitCode, exports: exports)
    }
}

/// Parses bash's `export -p` output: `declare -x NAME="VALUE"` (backslash before `"$\``),
/// `declare -x NAME=$'VALUE'` (ANSI-C escapes, octal bytes) or `declare -x NAME` (exported
/// but unset, left out). Values come back byte for byte.
enum ExportListing {
    static func parse(_ text: [UInt8]) -> [String: String] {
        var exports: [String: String] = [:]
        var index = 0
        func peek(_ offset: Int = 0) -> UInt8? { index + offset < text.count ? text[index + offset] : nil }
        while index < text.count {
            // "declare -FLAGS NAME"
            guard let declareEnd = text[index...].firstIndex(of: 0x20),
                  let flagsEnd = text[(declareEnd + 1)...].firstIndex(of: 0x20) else { break }
            let nameEnd = text[(flagsEnd + 1)...].firstIndex(where: { $0 == 0x3d || $0 == 0x0a }) ?? text.count
            let name = String(decoding: text[(flagsEnd + 1)..<nameEnd], as: UTF8.self)
            index = nameEnd
            guard peek() == 0x3d else {  // no value
                index += 1
                continue
            }
            index += 1
            var value: [UInt8] = []
            if peek() == 0x22 {  // "..."
                index += 1
                while let byte = peek(), byte != 0x22 {
                    if byte == 0x5c, let next = peek(1) {
                        value.append(next)
                        index += 2
                    } else {
                        value.append(byte)
                        index += 1
                    }
                }
                index += 1
            } else if peek() == 0x24, peek(1) == 0x27 {  // $'...'
                index += 2
                while let byte = peek(), byte != 0x27 {
                    index += 1
                    guard byte == 0x5c, let escape = peek() else {
                        value.append(byte)
                        continue
                    }
                    index += 1
                    switch escape {
                    case UInt8(ascii: "a"): value.append(0x07)
                    case UInt8(ascii: "b"): value.append(0x08)
                    case UInt8(ascii: "e"), UInt8(ascii: "E"): value.append(0x1b)
                    case UInt8(ascii: "f"): value.append(0x0c)
                    case UInt8(ascii: "n"): value.append(0x0a)
                    case UInt8(ascii: "r"): value.append(0x0d)
                    case UInt8(ascii: "t"): value.append(0x09)
                    case UInt8(ascii: "v"): value.append(0x0b)
                    case UInt8(ascii: "0")...UInt8(ascii: "7"):
                        var code = Int(escape - UInt8(ascii: "0"))
                        for _ in 0..<2 {
                            guard let digit = peek(), (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(digit) else { break }
                            code = code * 8 + Int(digit - UInt8(ascii: "0"))
                            index += 1
                        }
                        value.append(UInt8(truncatingIfNeeded: code))
                    default: value.append(escape)  // \\ \' \" and anything unknown
                    }
                }
                index += 1
            } else {
                while let byte = peek(), byte != 0x0a {
                    value.append(byte)
                    index += 1
                }
            }
            exports[name] = String(decoding: value, as: UTF8.self)
            if peek() == 0x0a { index += 1 }
        }
        return exports
    }
}
