import Foundation
import Logging
import WardenCore

/// One finished attempt: a line of `RUN_DIR/results.jsonl`, keyed by instance and attempt.
public struct AttemptResult: Sendable, Codable, Hashable {
    public var instanceID: String
    /// 1-based.
    public var attempt: Int
    public var exitStatus: EpisodeExitStatus
    public var resolved: Bool
    /// SWE-bench's resolution (RESOLVED_FULL, RESOLVED_PARTIAL, RESOLVED_NO), nil when not graded.
    public var resolution: String?
    public var failToPassPassed: Int
    public var failToPassTotal: Int
    public var passToPassPassed: Int
    public var passToPassTotal: Int
    public var steps: Int
    public var formatErrors: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var episodeSeconds: Double
    public var scoreSeconds: Double
    /// Every model name the server reported during the episode.
    public var modelVersions: [String]
    /// The submitted patch, or the final diff when nothing was submitted.
    public var patch: String
    public var submitted: Bool
    /// The trajectory, relative to the run directory: `trajectories/<instance_id>/<attempt>.jsonl`.
    public var trajectory: String
    /// Why the attempt could not run or be scored (a harness failure, recorded, not thrown).
    public var error: String?

    public init(instanceID: String, attempt: Int, exitStatus: EpisodeExitStatus, resolved: Bool, resolution: String?,
                failToPassPassed: Int, failToPassTotal: Int, passToPassPassed: Int, passToPassTotal: Int, steps: Int,
                formatErrors: Int, promptTokens: Int, completionTokens: Int, episodeSeconds: Double, scoreSeconds: Double,
                modelVersions: [String], patch: String, submitted: Bool, trajectory: String, error: String?) {
        self.instanceID = instanceID
        self.attempt = attempt
        self.exitStatus = exitStatus
        self.resolved = resolved
        self.resolution = resolution
        self.failToPassPassed = failToPassPassed
        self.failToPassTotal = failToPassTotal
        self.passToPassPassed = passToPassPassed
        self.passToPassTotal = passToPassTotal
        self.steps = steps
        self.formatErrors = formatErrors
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.episodeSeconds = episodeSeconds
        self.scoreSeconds = scoreSeconds
        self.modelVersions = modelVersions
        self.patch = patch
        self.submitted = submitted
        self.trajectory = trajectory
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", attempt, exitStatus = "exit_status", resolved, resolution
        case failToPassPassed = "f2p_passed", failToPassTotal = "f2p_total", passToPassPassed = "p2p_passed", passToPassTotal = "p2p_total"
        case steps, formatErrors = "format_errors", promptTokens = "prompt_tokens", completionTokens = "completion_tokens"
        case episodeSeconds = "episode_seconds", scoreSeconds = "score_seconds", modelVersions = "model_versions"
        case patch, submitted, trajectory, error
    }

    /// False when a harness failure (the attempt could not run, or could not be scored) stopped
    /// it: such a row is kept as a record of the cause, but resuming redoes the attempt.
    public var isFinished: Bool { error == nil }

    /// The key that makes a row unique in a run.
    public var key: String { "\(instanceID)#\(attempt)" }
}

/// Reads `results.jsonl`, keeping the last row per (instance, attempt); a missing file is an
/// empty run, and so is a device. Lines that are not rows (a line cut short by a kill, a hand edit) are skipped and
/// reported to `logger` with the file and line; a file that cannot be read is an error.
public func readResults(_ url: URL, logger: Logger = Logger(label: "warden.run")) throws -> [AttemptResult] {
    var status = stat()
    guard stat(url.path, &status) == 0 else {
        if errno == ENOENT { return [] }
        throw WardenError("run.results", "cannot read the results: \(String(cString: strerror(errno)))", context: url.path)
    }
    // A device or pipe (results sent to /dev/null, say) holds no earlier rows to read.
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        logger.warning("not a regular file: no earlier rows are read from it", metadata: ["file": "\(url.path)"])
        return []
    }
    let read = try SFTExport.readResultRows(url)
    for problem in read.problems { logger.warning("\(problem)") }
    return read.rows.map(\.row)
}
