import CJail
import Foundation
import WardenCore

/// One running `warden-jail` helper and the pipes to the program it jailed.
///
/// The helper reads its specification on fd 3, reports set-up failures on fd 4 and kills the
/// jail when the lifeline on fd 5 closes: closing `lifeline` here, or this process dying,
/// ends every process in the jail. The jail's cgroups live until the lifeline closes, so
/// `memoryCounter` can still be read after the jail's pid 1 died.
final class HelperProcess {
    let pid: pid_t
    /// Write end of the jailed program's stdin.
    private(set) var input: Int32
    /// Read ends of the jailed program's stdout and stderr (non-blocking).
    private(set) var output: Int32
    private(set) var errorOutput: Int32
    private var lifeline: Int32
    private var exitStatus: Int32?
    /// The jail's out-of-memory kill counter; nil without a memory cgroup.
    let memoryCounter: MemoryCounter?
    /// The jail's cgroups, which the helper removes as it exits; removed here when it could
    /// not (killed).
    private let cgroupDirectories: [String]

    /// Starts a jail running `arguments` and waits until the program was exec'd inside it.
    /// Throws with the helper's own explanation when the jail cannot be built.
    /// `passing` becomes the jailed program's fd 3 (the helper's fd 6); the caller keeps its copy.
    static func start(_ configuration: JailConfiguration, arguments: [String], workingDirectory: String?,
                      passing passedDescriptor: Int32? = nil) throws -> HelperProcess {
        let specification = try specificationBytes(configuration, arguments: arguments, workingDirectory: workingDirectory)
        let spawned = try spawn(configuration.helperPath, passing: passedDescriptor, expectsHostNetwork: configuration.profile.network == .host)
        return try finish(spawned, specification: specification, configuration: configuration)
    }

    /// Starts a jail as ``start(_:arguments:workingDirectory:passing:)`` does, on a helper
    /// that is already running and waiting for its specification (`PrestartedShellHelper`).
    static func start(_ configuration: JailConfiguration, arguments: [String], workingDirectory: String?,
                      on spawned: Spawned) throws -> HelperProcess {
        let specification: [UInt8]
        do { specification = try specificationBytes(configuration, arguments: arguments, workingDirectory: workingDirectory) } catch {
            spawned.abandon()
            throw error
        }
        return try finish(spawned, specification: specification, configuration: configuration)
    }

    /// The specification as the helper reads it: NUL-terminated tokens.
    private static func specificationBytes(_ configuration: JailConfiguration, arguments: [String], workingDirectory: String?) throws -> [UInt8] {
        let tokens = configuration.specification(arguments: arguments, workingDirectory: workingDirectory)
        if let bad = tokens.first(where: { $0.utf8.contains(0) }) {
            throw WardenError("jail.spec", "a jail argument contains a NUL byte: \(bad.prefix(80))")
        }
        var specification = [UInt8]()
        for token in tokens { specification += Array(token.utf8) + [0] }
        guard specification.count < 60_000 else {
            throw WardenError("jail.spec", "the jail specification is too large (\(specification.count) bytes)")
        }
        return specification
    }

    /// A started helper waiting for its specification, and the harness's ends of its pipes.
    struct Spawned: Sendable {
        let path: String
        let pid: pid_t
        let specWrite: Int32, statusRead: Int32, input: Int32, output: Int32, errorOutput: Int32, lifeline: Int32
        /// For a prestarted shell's helper: the status socket end the harness keeps (the
        /// helper's fd 6 is the other end).
        var statusSocket: Int32 = -1

        /// Ends a helper nobody will use: its specification pipe closes empty, so it exits.
        func abandon() {
            for fd in [specWrite, statusRead, input, output, errorOutput, lifeline, statusSocket] where fd >= 0 { close(fd) }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
    }

    /// Spawns the helper with its pipes; it blocks reading its specification on fd 3. It
    /// clones the jail's pid 1 meanwhile, into a network namespace of its own unless
    /// `expectsHostNetwork`; a specification that says otherwise only costs a second clone.
    static func spawn(_ helperPath: String, passing passedDescriptor: Int32?, expectsHostNetwork: Bool = false) throws -> Spawned {
        ignoreSigpipe
        // Every descriptor given to the helper is numbered above its fds 0-6 first: the spawn
        // dup2s them into 0-6 one after another, and a source numbered like an earlier target
        // would hand the helper whatever that dup2 just put there (a harness started with few
        // descriptors open got the status pipe as the shell's socket, and hung).
        var pipes = [Int32](repeating: -1, count: 12)
        defer { for fd in pipes where fd >= 0 { close(fd) } }
        for index in stride(from: 0, to: 12, by: 2) {
            var pair: [Int32] = [-1, -1]
            guard cjail_pipe_cloexec(&pair) == 0 else {
                throw WardenError("jail.start", "cannot create pipes: \(String(cString: strerror(errno)))")
            }
            pipes[index] = try aboveHelperDescriptors(pair[0], closing: true)
            pipes[index + 1] = try aboveHelperDescriptors(pair[1], closing: true)
        }
        let passedCopy = try passedDescriptor.map { try aboveHelperDescriptors($0, closing: false) }
        defer { if let passedCopy, passedCopy != passedDescriptor { close(passedCopy) } }
        let (specRead, statusWrite, stdinRead, stdoutWrite, stderrWrite, lifelineRead) = (pipes[0], pipes[3], pipes[4], pipes[7], pipes[9], pipes[10])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (source, target) in [(stdinRead, 0), (stdoutWrite, 1), (stderrWrite, 2), (specRead, 3), (statusWrite, 4), (lifelineRead, 5)] {
            posix_spawn_file_actions_adddup2(&actions, source, Int32(target))
        }
        if let passedCopy { posix_spawn_file_actions_adddup2(&actions, passedCopy, 6) }
        cjail_spawn_file_actions_addclosefrom(&actions, passedCopy == nil ? 6 : 7)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Dispatch and Foundation block or ignore signals; none of that may reach the jail.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // A process group of its own: a terminal's Ctrl-C reaches the harness, which decides.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(helperPath)] + (expectsHostNetwork ? [strdup("--expect-host-network")] : []) + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&pid, helperPath, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw WardenError("jail.helper", "cannot start \(helperPath): \(String(cString: strerror(spawned)))")
        }
        let helper = Spawned(path: helperPath, pid: pid, specWrite: pipes[1], statusRead: pipes[2], input: pipes[5], output: pipes[6],
                             errorOutput: pipes[8], lifeline: pipes[11])
        for index in [1, 2, 5, 6, 8, 11] { pipes[index] = -1 }  // owned by `helper` now; the helper's ends close with the defer
        return helper
    }

    /// Sends the specification and waits until the jailed program was exec'd (or the helper
    /// reported why it could not be).
    private static func finish(_ spawned: Spawned, specification: [UInt8], configuration: JailConfiguration) throws -> HelperProcess {
        let cgroups = configuration.cgroups
        let pid = spawned.pid
        let process = HelperProcess(pid: pid, input: spawned.input, output: spawned.output, errorOutput: spawned.errorOutput, lifeline: spawned.lifeline,
                                    memoryCounter: cgroups.memory.map { MemoryCounter($0, helper: pid) },
                                    cgroupDirectories: Array(Set([cgroups.pids, cgroups.memory].compactMap { $0?.jail(helper: pid) })))
        // The helper reads while this writes: a short write only comes from a signal.
        var offset = 0
        while offset < specification.count {
            let written = specification.withUnsafeBytes { write(spawned.specWrite, $0.baseAddress! + offset, $0.count - offset) }
            if written > 0 { offset += written; continue }
            if written < 0 && errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            close(spawned.specWrite)
            close(spawned.statusRead)
            let status = process.terminate()
            throw WardenError("jail.start", "cannot send the jail specification to the helper (exit \(status)): \(reason)")
        }
        close(spawned.specWrite)

        let report = readToEnd(spawned.statusRead)
        close(spawned.statusRead)
        if !report.isEmpty {
            let status = process.terminate()
            let message = String(decoding: report, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw WardenError("jail.start", "the jail could not start (helper exit \(status)): \(message)")
        }
        return process
    }

    private init(pid: pid_t, input: Int32, output: Int32, errorOutput: Int32, lifeline: Int32, memoryCounter: MemoryCounter?,
                 cgroupDirectories: [String]) {
        self.pid = pid
        self.memoryCounter = memoryCounter
        self.cgroupDirectories = cgroupDirectories
        self.input = input
        self.output = output
        self.errorOutput = errorOutput
        self.lifeline = lifeline
        for fd in [input, output, errorOutput] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
    }

    /// Closes the lifeline, so the helper SIGKILLs the jail's pid 1 (and with it every process
    /// in the pid namespace), then reaps the helper. Returns its exit status.
    @discardableResult
    func terminate() -> Int32 {
        if lifeline >= 0 {
            close(lifeline)
            lifeline = -1
        }
        return wait()
    }

    /// Reaps the helper; its status is the jailed program's (128+N when killed by signal N).
    @discardableResult
    func wait() -> Int32 {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        for directory in cgroupDirectories where rmdir(directory) != 0 && errno != ENOENT {
            FileHandle.standardError.write(Data("warden: cannot remove the jail's cgroup \(directory): \(String(cString: strerror(errno)))\n".utf8))
        }
        let signal = status & 0x7f
        let code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        exitStatus = code
        return code
    }

    /// The host pid of the jail's pid 1 (the program the helper exec'd), from the helper's
    /// child list; nil once it is gone.
    func jailedProgramPid() -> pid_t? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { pid_t($0) }
    }

    func closeInput() {
        if input >= 0 {
            close(input)
            input = -1
        }
    }

    deinit {
        closeInput()
        terminate()
        if output >= 0 { close(output) }
        if errorOutput >= 0 { close(errorOutput) }
    }
}

/// Writing to a pipe whose reader died must be an error code, not a signal that kills the harness.
private let ignoreSigpipe: Void = {
    signal(SIGPIPE, SIG_IGN)
}()

/// `fd` itself when it is numbered above the helper's descriptors 0-6, else a close-on-exec
/// copy that is (closing `fd` when asked).
private func aboveHelperDescriptors(_ fd: Int32, closing: Bool) throws -> Int32 {
    guard fd <= 6 else { return fd }
    let copy = fcntl(fd, F_DUPFD_CLOEXEC, 7)
    let code = errno
    if closing { close(fd) }
    guard copy >= 0 else { throw WardenError("jail.start", "cannot renumber a descriptor: \(String(cString: strerror(code)))") }
    return copy
}

/// Reads a blocking descriptor until EOF.
func readToEnd(_ fd: Int32) -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { return bytes }
        bytes += buffer[0..<count]
    }
}

/// A shell's helper started before its jail is configured. `warden solve` starts one before
/// it parses its arguments: the helper's exec and loading (2–5 ms on two busy cores) then
/// overlap the parsing instead of the checkout. It waits for its specification; the first
/// shell session of the process takes it.
enum PrestartedShellHelper {
    /// Finds and starts the helper on a thread of its own, expecting the network namespace of
    /// its own that agent profiles have. A failure leaves nothing to take: the session then
    /// spawns its helper as usual, which fails the same way and reports it.
    static func start(path locate: @escaping @autoclosure @Sendable () throws -> String, into slot: Slot = .shared) {
        slot.begin()
        BlockingThreads.shared.detach {
            guard let path = try? locate() else { return slot.end(nil) }
            var pair: [Int32] = [-1, -1]
            guard cjail_credential_socketpair(&pair) == 0 else { return slot.end(nil) }
            _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
            defer { close(pair[1]) }  // the helper has its own copy as fd 6
            guard var helper = try? HelperProcess.spawn(path, passing: pair[1]) else {
                close(pair[0])
                return slot.end(nil)
            }
            helper.statusSocket = pair[0]
            slot.end(helper)
        }
    }

    /// The prestarted helper for `path`, waiting for one being started; nil when there is none.
    static func take(path: String, from slot: Slot = .shared) -> HelperProcess.Spawned? {
        slot.take(path: path)
    }

    /// Where a prestarted helper waits to be taken (the process has one; tests make their own).
    final class Slot: @unchecked Sendable {
        static let shared = Slot()

        private let condition = NSCondition()
        private var starting = false
        private var helper: HelperProcess.Spawned?

        func begin() {
            condition.lock()
            starting = true
            condition.unlock()
        }

        func end(_ started: HelperProcess.Spawned?) {
            condition.lock()
            let replaced = helper
            helper = started
            starting = false
            condition.broadcast()
            condition.unlock()
            replaced?.abandon()
        }

        func take(path: String) -> HelperProcess.Spawned? {
            condition.lock()
            while starting { condition.wait() }
            let taken = helper
            helper = nil
            condition.unlock()
            guard let taken, taken.path == path else {
                taken?.abandon()
                return nil
            }
            return taken
        }
    }
}
