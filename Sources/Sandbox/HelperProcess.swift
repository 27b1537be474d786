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
        ignoreSigpipe
        let tokens = configuration.specification(arguments: arguments, workingDirectory: workingDirectory)
        if let bad = tokens.first(where: { $0.utf8.contains(0) }) {
            throw WardenError("jail.spec", "a jail argument contains a NUL byte: \(bad.prefix(80))")
        }
        var specification = [UInt8]()
        for token in tokens { specification += Array(token.utf8) + [0] }

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
        let (specRead, specWrite) = (pipes[0], pipes[1])
        let (statusRead, statusWrite) = (pipes[2], pipes[3])
        let (stdinRead, stdinWrite) = (pipes[4], pipes[5])
        let (stdoutRead, stdoutWrite) = (pipes[6], pipes[7])
        let (stderrRead, stderrWrite) = (pipes[8], pipes[9])
        let (lifelineRead, lifelineWrite) = (pipes[10], pipes[11])

        // The specification is a few kilobytes: it fits in the pipe before the helper runs.
        guard specification.count < 60_000 else {
            throw WardenError("jail.spec", "the jail specification is too large (\(specification.count) bytes)")
        }
        let written = specification.withUnsafeBytes { write(specWrite, $0.baseAddress, $0.count) }
        guard written == specification.count else { throw WardenError("jail.start", "cannot write the jail specification") }
        close(specWrite)
        pipes[1] = -1

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
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(configuration.helperPath), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&pid, configuration.helperPath, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw WardenError("jail.helper", "cannot start \(configuration.helperPath): \(String(cString: strerror(spawned)))")
        }
        for index in [0, 3, 4, 7, 9, 10] {  // the helper's ends
            close(pipes[index])
            pipes[index] = -1
        }
        let cgroups = configuration.cgroups
        let process = HelperProcess(pid: pid, input: stdinWrite, output: stdoutRead, errorOutput: stderrRead, lifeline: lifelineWrite,
                                    memoryCounter: cgroups.memory.map { MemoryCounter($0, helper: pid) },
                                    cgroupDirectories: Array(Set([cgroups.pids, cgroups.memory].compactMap { $0?.jail(helper: pid) })))
        for index in [5, 6, 8, 11] { pipes[index] = -1 }  // owned by `process` now

        let report = readToEnd(statusRead)
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
