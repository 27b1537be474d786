/// One action a model asked for, after parsing.
public enum AgentAction: Sendable, Codable, Hashable {
    /// A command for the persistent jailed shell.
    case bash(command: String)
    /// Replace the single occurrence of `search` in the file at `path` with `replace`.
    case edit(path: String, search: String, replace: String)
    /// Create a new file; fails if it exists.
    case create(path: String, content: String)
    /// Submit the checkout's diff against the base, or the patch file at `path`.
    case submit(path: String?)

    /// The tool's name as the protocols spell it.
    public var toolName: String {
        switch self {
        case .bash: "bash"
        case .edit: "edit"
        case .create: "create"
        case .submit: "submit"
        }
    }
}

/// How an episode ended. Every ending is distinct and recorded.
public enum EpisodeExitStatus: String, Sendable, Codable, Hashable, CaseIterable {
    case submitted
    case stepLimit = "step_limit"
    case tokenLimit = "token_limit"
    /// The model server said the prompt no longer fits its context window.
    case contextLength = "context_length"
    case wallTime = "wall_time"
    case formatErrors = "format_errors"
    case modelError = "model_error"
    case sandboxError = "sandbox_error"
    case cancelled
}

/// A task for the agent: a SWE-bench instance, or an issue on the user's own repository.
/// Unknown fields of a suite's row are kept in `extra`.
public struct TaskInstance: Sendable, Codable, Hashable {
    public var instanceID: String
    public var problemStatement: String
    public var hintsText: String?
    /// `owner/name` for suite tasks; a path for the user's own repository.
    public var repo: String?
    public var baseCommit: String?
    /// The gold fix, when the task has one (used by the oracle and by validation).
    public var goldPatch: String?
    /// The hidden tests; never shown to the agent.
    public var testPatch: String?
    public var failToPass: [String]
    public var passToPass: [String]
    /// Warden's additions for suites without images: the test command (`{test_files}` expands
    /// to the files the test patch touches), the log parser's name, its timeout, and set-up
    /// commands run with the set-up profile before the agent starts.
    public var testCommand: String?
    public var logParser: LogParser?
    public var timeoutSeconds: Double?
    public var setup: [String]
    /// The container image the task runs in (`oci:DIR[:TAG]`, `docker-archive:FILE` or a
    /// registry reference); nil runs it on the host's root.
    public var image: String?
    /// How Warden builds the task's environment once and shares it (a venv, installed
    /// requirements, commands); nil: nothing is built.
    public var environment: TaskEnvironmentSpec?
    /// Every other field of the row, kept as it was.
    public var extra: [String: JSONValue]

    public init(instanceID: String, problemStatement: String, hintsText: String? = nil, repo: String? = nil,
                baseCommit: String? = nil, goldPatch: String? = nil, testPatch: String? = nil,
                failToPass: [String] = [], passToPass: [String] = [], testCommand: String? = nil, logParser: LogParser? = nil,
                timeoutSeconds: Double? = nil, setup: [String] = [], image: String? = nil, environment: TaskEnvironmentSpec? = nil,
                extra: [String: JSONValue] = [:]) {
        self.instanceID = instanceID
        self.problemStatement = problemStatement
        self.hintsText = hintsText
        self.repo = repo
        self.baseCommit = baseCommit
        self.goldPatch = goldPatch
        self.testPatch = testPatch
        self.failToPass = failToPass
        self.passToPass = passToPass
        self.testCommand = testCommand
        self.logParser = logParser
        self.timeoutSeconds = timeoutSeconds
        self.setup = setup
        self.image = image
        self.environment = environment
        self.extra = extra
    }
}

/// A task's `environment` field: what Warden builds once per (repository, version, spec) with
/// the set-up profile and then binds read-only into the task's agent and test jails.
///
/// Steps run in order in the checkout: a venv with the host's Python of `python`; one
/// `pip install` of `requirements` (listed lines, or a requirements file in the repository)
/// and, when `editable`, of the repository itself; then `commands`.
public struct TaskEnvironmentSpec: Sendable, Codable, Hashable {
    /// The Python version (`3`, `3.11`); nil with requirements or `editable` means `3`, nil
    /// without them makes no venv.
    public var python: String?
    /// Lines of a requirements file (options such as `--no-index` included).
    public var requirements: [String]
    /// A requirements file's path in the repository, read at the task's base commit.
    public var requirementsFile: String?
    /// Installs the repository itself in editable mode (`pip install -e`).
    public var editable: Bool
    /// Shell commands run after the installs, with the venv first on PATH.
    public var commands: [String]

    public init(python: String? = nil, requirements: [String] = [], requirementsFile: String? = nil, editable: Bool = false,
                commands: [String] = []) {
        self.python = python
        self.requirements = requirements
        self.requirementsFile = requirementsFile
        self.editable = editable
        self.commands = commands
    }

    /// The Python version the venv is made with, nil when there is no venv.
    public var pythonVersion: String? {
        python ?? (requirements.isEmpty && requirementsFile == nil && !editable ? nil : "3")
    }
}

extension TaskInstance {
    /// Why `id` cannot name a task, or nil when it can. Instance ids become file names (run
    /// directories, caches, work trees), so a separator, `..`, a control character or a name
    /// too long for one path component could write outside the place meant for it.
    public static func problem(withID id: String) -> String? {
        if id.isEmpty { return "instance_id is empty" }
        if id.utf8.count > 200 { return "instance_id \(id.prefix(40).debugDescription)... is longer than 200 bytes" }
        if id.contains("/") || id.contains("\\") { return "instance_id \(id.debugDescription) contains a path separator" }
        if id.contains("..") { return "instance_id \(id.debugDescription) contains '..'" }
        if id.hasPrefix(".") || id.hasPrefix("-") { return "instance_id \(id.debugDescription) starts with '\(id.prefix(1))'" }
        if id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format }) {
            return "instance_id \(id.debugDescription) contains a control character"
        }
        return nil
    }
}

/// Where a task's repository can be found again, so a trajectory can be replayed or forked
/// after the run that made it has removed its working copies.
public enum TaskOrigin: Sendable, Codable, Hashable {
    /// A suite task directory (its plain files are committed afresh to the same base commit).
    case taskDirectory(path: String)
    /// One instance of a suite file or a SWE-bench JSON/JSONL file, with the `--repos` root.
    case suiteFile(path: String, instanceID: String, repos: String?)
    /// A repository on disk (`warden solve --repo`), checked out at the header's base commit.
    case repository(path: String)
}

/// The test-log formats Warden can read; raw values are the `log_parser` names used in task files.
public enum LogParser: String, CaseIterable, Sendable, Codable {
    /// `pytest -rA` short test summary lines, read the way SWE-bench 5.x reads them.
    case pytest
    /// `python -m unittest -v` result lines.
    case unittest
    /// `go test -v` `--- PASS:` / `--- FAIL:` / `--- SKIP:` lines.
    case gotest
    /// `go test -json` event lines.
    case gotestJSON = "gotest-json"
    /// `cargo test` lines `test path::name ... ok`.
    case cargo
    /// `node --test` output: TAP (the reporter when stdout is not a terminal) or the spec reporter.
    case node
    /// TAP 13/14 from any producer, including `prove -v`.
    case tap
    /// `swift test` output: XCTest `Test Case '...' passed` lines and Swift Testing `✔ Test ...` lines.
    case xctest
    /// JUnit XML (including pytest's `--junitxml`), possibly surrounded by other output.
    case junit
}
