import ArgumentParser
import Foundation
import Logging
import Sandbox
import WardenCore
import Workspace

/// Options shared by the commands that open a jail over a checkout.
struct JailOptions: ParsableArguments {
    @Option(name: .long, help: "The checkout to work in.")
    var repo: String = "."

    @Option(name: .long, help: "A profile name from Sandboxes/ or a path to a profile file.")
    var profile: String = "agent"

    @Option(name: .long, help: "Wall-clock timeout of one command, in seconds (default: the profile's).")
    var timeout: Double?

    @Flag(name: .long, help: "Let jailed commands write the checkout's .git (hooks and config there run on the host the next time you use git).")
    var writableGit = false

    func validate() throws {
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    /// Loads the profile and prepares jails over the checkout. This is the user's own
    /// repository: its `.git` stays read-only unless asked otherwise, whatever the profile says,
    /// so no jailed command can plant a hook or `core.fsmonitor` for the host's git to run.
    func makeConfiguration() throws -> JailConfiguration {
        var profile = try SandboxProfile.load(self.profile)
        profile.gitDirectoryReadOnly = !writableGit
        return try JailConfiguration(profile: profile, checkout: URL(fileURLWithPath: repo))
    }
}

/// Tracks a checkout's changes from a state directory outside it, removed when done.
final class ChangeTracker {
    let tracker: WorkspaceTracker?
    /// Why changes cannot be tracked (not a git repository, for example).
    let unavailable: String?
    private let stateDirectory: URL

    init(checkout: String) {
        stateDirectory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-state-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
            tracker = try WorkspaceTracker(checkout: URL(fileURLWithPath: checkout), stateDirectory: stateDirectory)
            unavailable = nil
        } catch {
            tracker = nil
            unavailable = "\(error)"
        }
    }

    /// The changes since the previous call (and since the base), or nil when untracked.
    func snapshot() throws -> WorkspaceSnapshot? {
        try tracker?.snapshot()
    }

    deinit {
        removeScratch(stateDirectory)
    }
}

/// Turns SIGINT and SIGTERM into a readable descriptor, so a running command is cancelled
/// (its jail killed) and the harness still writes its result.
final class InterruptSignal {
    let descriptor: Int32
    private let writeEnd: Int32
    private var sources: [DispatchSourceSignal] = []
    private(set) var received: Int32 = 0

    init() {
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        descriptor = fds[0]
        writeEnd = fds[1]
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            let writeEnd = self.writeEnd
            source.setEventHandler { [weak self] in
                self?.received = signalNumber
                var byte: UInt8 = 1
                _ = write(writeEnd, &byte, 1)
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Empties the pipe after a handled interrupt, so the next command is not cancelled too.
    func reset() {
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(descriptor, &buffer, buffer.count) > 0 {}
        _ = fcntl(descriptor, F_SETFL, flags)
        received = 0
    }
}

/// Shell-quotes arguments so `warden exec -- grep "a b" file` runs exactly those words.
func shellQuote(_ arguments: [String]) -> String {
    if arguments.count == 1 { return arguments[0] }
    return arguments.map { argument in
        if !argument.isEmpty, argument.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return argument }
        return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// `M path`, `A path`, `D path`, one per line.
func describe(_ changes: [FileChange]) -> String {
    changes.map { change in
        let letter = switch change.status {
        case .added: "A"
        case .modified: "M"
        case .deleted: "D"
        }
        return "\(letter) \(change.path)"
    }.joined(separator: "\n")
}

func writeStandardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

func writeStandardOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Removes a command's scratch directory. A failure leaves only scratch behind, so it does not
/// fail the command; it is logged at debug with its cause.
func removeScratch(_ url: URL) {
    do { try FileManager.default.removeItem(at: url) } catch {
        Logger(label: "warden").debug("scratch directory not removed", metadata: ["path": "\(url.path)", "cause": "\(error)"])
    }
}
