import Foundation
import Logging
import Sandbox
import WardenCore
import Workspace

/// A task's environment in the store, ready to be bound read-only into its jails.
public struct PreparedEnvironment: Sendable, Hashable {
    /// The store's key: the content id of everything the build depends on.
    public var key: String
    public var mount: TaskEnvironmentMount
    /// Whether this call built it (false: it was already in the store, or another builder made it).
    public var built: Bool
}

/// Task environments (`TaskEnvironmentSpec`), each built once with the set-up profile and
/// shared read-only by every jail of every task that has the same one, under `directory`:
/// - `environments/<key>/env`: what is bound at `/opt/warden-env` (the venv and whatever the
///   commands put there), with `build.log` and `environment.json` (the key's inputs) beside it;
/// - `locks/<key>.lock`: held while one builder builds; the others wait.
///
/// The key covers the repository, its version (SWE-bench's `version`, else the base commit),
/// the spec, the requirements file's content at the base commit, and the interpreter (its real
/// path, version and prefix). Entries are built as `PublishedDirectory`s, so a build that
/// fails or dies leaves nothing in use.
public struct EnvironmentStore: Sendable {
    public var directory: URL
    /// The profile builds run under (`setup`: the host's network, the checkout writable).
    public var profile: SandboxProfile
    var logger = Logger(label: "warden.environments")

    public init(profile: SandboxProfile, directory: URL = EnvironmentStore.defaultDirectory) {
        self.profile = profile
        self.directory = directory
    }

    /// `$WARDEN_ENVIRONMENTS`, else `$XDG_CACHE_HOME/warden/environments`, else `~/.cache/warden/environments`.
    public static var defaultDirectory: URL { WardenCache.directory("environments", overriddenBy: "WARDEN_ENVIRONMENTS") }

    /// The task's environment, built on first use; nil for a task without one.
    public func prepare(for task: TaskInstance, repository: URL) async throws -> PreparedEnvironment? {
        guard let spec = task.environment else { return nil }
        guard let base = task.baseCommit else {
            throw WardenError("environment.task", "the task has an environment but no base commit to build it from", context: task.instanceID)
        }
        let interpreter = try spec.pythonVersion.map { version in
            guard let found = ToolchainDetector.python(version) else {
                throw WardenError("environment.python", "the task's environment asks for Python \(version), which this host does not have "
                    + "(looked for python\(version) and python3 on PATH and in pyenv's versions); install it or change environment.python",
                    context: task.instanceID)
            }
            return found
        }
        let inputs = try await onOwnThread { try BuildInputs(task: task, spec: spec, base: base, repository: repository, interpreter: interpreter) }
        let key = try inputs.key()
        let entry = directory.appendingPathComponent("environments/\(key)")
        var mount = TaskEnvironmentMount(directory: entry.appendingPathComponent("env").path,
                                         toolchains: interpreter.map { [$0.toolchain] } ?? [],
                                         variables: interpreter == nil ? [:] : ["VIRTUAL_ENV": TaskEnvironmentMount.mountPoint])
        let built = try await PublishedDirectory.ensure(entry, lock: directory.appendingPathComponent("locks/\(key).lock")) { partial in
            var building = mount
            building.directory = partial.appendingPathComponent("env").path
            building.writable = true
            try await build(inputs, key: key, into: partial, mount: building, task: task, repository: repository)
        }
        mount.writable = false
        return PreparedEnvironment(key: key, mount: mount, built: built)
    }

    /// Runs the build's steps in a set-up jail over a throwaway checkout of the base commit,
    /// bound where the task's jails will have theirs.
    private func build(_ inputs: BuildInputs, key: String, into partial: URL, mount: TaskEnvironmentMount, task: TaskInstance, repository: URL) async throws {
        let started = ContinuousClock.now
        let checkout = partial.appendingPathComponent("checkout")
        let profile = self.profile
        let shell = try await onOwnThread {
            try FileManager.default.createDirectory(atPath: mount.directory, withIntermediateDirectories: true)
            try WorkspaceTracker.materialize(source: repository, commit: inputs.baseCommit, into: checkout)
            if !inputs.spec.requirements.isEmpty {
                // The throwaway checkout holds the listed lines for pip: nothing of it is kept.
                try Data((inputs.spec.requirements.joined(separator: "\n") + "\n").utf8)
                    .write(to: checkout.appendingPathComponent(BuildStep.listedRequirements))
            }
            return ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout,
                                                                     mountPoint: TaskEnvironmentMount.checkoutMountPoint,
                                                                     environmentMount: mount))
        }
        var log = ""
        do {
            defer { shell.close() }
            for step in BuildStep.steps(for: inputs.spec, interpreter: inputs.interpreter) {
                let result = try await shell.run(step.command)
                log += "$ \(step.shown)\n\(result.combined.text)\n"
                guard result.exitCode == 0 else {
                    let status = result.timedOut ? "timed out" : "exit \(result.exitCode.map(String.init) ?? "none")"
                    throw WardenError("environment.build", "the task's environment failed to build at `\(step.shown)` (\(status)); "
                        + "nothing was cached. Its output ends:\n\(result.combined.text.suffix(2000))", context: task.instanceID)
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let fullLog = log
        try await onOwnThread {
            try HostTree.remove(atPath: checkout.path)
            try Data(fullLog.utf8).write(to: partial.appendingPathComponent("build.log"))
            try inputs.record(seconds: seconds).write(to: partial.appendingPathComponent("environment.json"))
        }
        logger.info("built task environment", metadata: ["task": "\(task.instanceID)", "key": "\(key)",
                                                         "seconds": "\((seconds * 100).rounded() / 100)"])
    }
}

/// Everything a build depends on; its canonical JSON is what the store's key hashes.
struct BuildInputs: Sendable, Codable {
    var repository: String
    var version: String
    var baseCommit: String
    var spec: TaskEnvironmentSpec
    /// The requirements file's content at the base commit.
    var requirementsFileContent: String?
    var interpreter: PythonInterpreter?
    /// Bumped when the way Warden builds changes.
    var format = 1

    init(task: TaskInstance, spec: TaskEnvironmentSpec, base: String, repository: URL, interpreter: PythonInterpreter?) throws {
        self.repository = task.repo ?? task.instanceID
        if case let .string(version)? = task.extra["version"], !version.isEmpty { self.version = version } else { self.version = base }
        self.baseCommit = base
        self.spec = spec
        self.interpreter = interpreter
        if let path = spec.requirementsFile {
            guard let data = try CheckoutDiff(checkout: repository, commit: base).baseContents(of: path) else {
                throw WardenError("environment.requirements", "environment.requirements names \(path), which is not a file at the base commit \(base)",
                                  context: task.instanceID)
            }
            requirementsFileContent = String(decoding: data, as: UTF8.self)
        }
    }

    func key() throws -> String {
        // The base commit is in the record, not in the key: tasks of one version share a build.
        var keyed = self
        keyed.baseCommit = ""
        return try ContentID.blob(try Self.encoder.encode(keyed))
    }

    /// `environment.json`: the inputs and how long the build took.
    func record(seconds: Double) throws -> Data {
        try Self.encoder.encode(Record(inputs: self, buildSeconds: (seconds * 100).rounded() / 100))
    }

    /// The inputs' fields and `build_seconds`, in one object.
    private struct Record: Encodable {
        var inputs: BuildInputs
        var buildSeconds: Double

        private enum Key: String, CodingKey { case buildSeconds = "build_seconds" }

        func encode(to encoder: any Encoder) throws {
            try inputs.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(buildSeconds, forKey: .buildSeconds)
        }
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// One command of a build, and how an error names it.
struct BuildStep {
    var command: String
    var shown: String

    /// Where the listed requirement lines are written in the build's checkout.
    static let listedRequirements = ".warden-requirements.txt"

    static func steps(for spec: TaskEnvironmentSpec, interpreter: PythonInterpreter?) -> [BuildStep] {
        var steps: [BuildStep] = []
        if let interpreter {
            steps.append(BuildStep(command: "\(quoted(interpreter.executable)) -m venv \(TaskEnvironmentMount.mountPoint)",
                                   shown: "python\(interpreter.version) -m venv \(TaskEnvironmentMount.mountPoint)"))
            var arguments: [String] = []
            if !spec.requirements.isEmpty { arguments += ["-r", listedRequirements] }
            if let file = spec.requirementsFile { arguments += ["-r", quoted(file)] }
            if spec.editable { arguments += ["-e", "."] }
            if !arguments.isEmpty {
                // One pip run, so index options in the requirements apply to the editable install too.
                let pip = "python -m pip install --disable-pip-version-check " + arguments.joined(separator: " ")
                steps.append(BuildStep(command: pip, shown: pip))
            }
        }
        steps += spec.commands.map { BuildStep(command: $0, shown: $0) }
        return steps
    }

    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
