import Agent
import Foundation
import Images
import Logging
import Sandbox
import Scoring
import Synchronization
import Tasks
import WardenCore
import Workspace

/// The configuration of a run, saved as `RUN_DIR/config.json`. Resuming with a different one
/// is refused unless forced; the worker count is not part of it (it may change freely).
public struct RunSettings: Sendable, Codable, Hashable {
    public var suite: String
    public var filter: String?
    public var limit: Int?
    public var attempts: Int
    /// The model spec (`oracle`, `replay:FILE`, `openai:URL`) and its sampling settings.
    public var model: String
    public var modelSettings: [String: String]
    public var agent: AgentConfiguration
    /// `I/N`, or nil for the whole run.
    public var shard: String?
    /// Every task of the run (all shards), so reports count tasks with no finished attempt.
    public var taskIDs: [String]
    public var wardenVersion: String

    public init(suite: String, filter: String?, limit: Int?, attempts: Int, model: String, modelSettings: [String: String],
                agent: AgentConfiguration, shard: String?, taskIDs: [String], wardenVersion: String) {
        self.suite = suite
        self.filter = filter
        self.limit = limit
        self.attempts = attempts
        self.model = model
        self.modelSettings = modelSettings
        self.agent = agent
        self.shard = shard
        self.taskIDs = taskIDs.sorted()
        self.wardenVersion = wardenVersion
    }

    /// The fields where `other` differs, for a refusal a user can act on.
    public func differences(from other: RunSettings) -> [String] {
        var fields: [String] = []
        if suite != other.suite { fields.append("suite (\(other.suite) -> \(suite))") }
        if filter != other.filter { fields.append("filter") }
        if limit != other.limit { fields.append("limit") }
        if attempts != other.attempts { fields.append("attempts (\(other.attempts) -> \(attempts))") }
        if model != other.model { fields.append("model (\(other.model) -> \(model))") }
        if modelSettings != other.modelSettings { fields.append("model settings") }
        if agent != other.agent { fields.append("agent configuration (protocol, limits, templates or profile)") }
        if shard != other.shard { fields.append("shard (\(other.shard ?? "none") -> \(shard ?? "none"))") }
        if taskIDs != other.taskIDs { fields.append("the suite's tasks") }
        return fields
    }
}

/// One attempt to run: a task and a 1-based attempt number.
public struct PlannedAttempt: Sendable, Hashable {
    public var instanceID: String
    public var attempt: Int
    public var key: String { "\(instanceID)#\(attempt)" }
}

/// Which attempts a run (or one shard of it) owns.
public enum AttemptPlan {
    /// Every task's attempts 1...K in a stable order; with a shard `I/N`, the attempts whose
    /// key hashes (FNV-1a) to I-1 modulo N, so shards are disjoint, cover everything, and do not
    /// depend on the order tasks were listed in.
    public static func attempts(for taskIDs: [String], attempts: Int, shard: (index: Int, count: Int)?) -> [PlannedAttempt] {
        let all = taskIDs.sorted().flatMap { id in (1...max(1, attempts)).map { PlannedAttempt(instanceID: id, attempt: $0) } }
        guard let shard else { return all }
        return all.filter { Int(fnv1a($0.key) % UInt64(shard.count)) == shard.index - 1 }
    }

    /// Parses `I/N` with 1 <= I <= N.
    public static func parseShard(_ text: String) -> (index: Int, count: Int)? {
        let parts = text.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] >= 1, (1...parts[1]).contains(parts[0]) else { return nil }
        return (parts[0], parts[1])
    }
}

/// Live state of a run for progress displays.
public final class RunProgress: Sendable {
    public struct Snapshot: Sendable {
        public var done: Int
        public var total: Int
        public var resolved: Int
        public var statuses: [String: Int]
        /// What each busy worker is doing: task, attempt and step.
        public var workers: [String: String]
        public var started: ContinuousClock.Instant
    }

    private let state: Mutex<Snapshot>

    init(total: Int) {
        state = Mutex(Snapshot(done: 0, total: total, resolved: 0, statuses: [:], workers: [:], started: .now))
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    func working(_ key: String, _ activity: String) { state.withLock { $0.workers[key] = activity } }

    func finished(_ key: String, result: AttemptResult?) {
        state.withLock {
            $0.workers[key] = nil
            guard let result else { return }
            $0.done += 1
            if result.resolved { $0.resolved += 1 }
            $0.statuses[result.exitStatus.rawValue, default: 0] += 1
        }
    }
}

/// Appends result rows with one write each, synced to disk, so a kill loses nothing finished.
///
/// Opening it repairs a torn last line (a kill in the middle of a write): the bytes after the
/// last newline are cut off before anything is appended, so the next row is never glued onto
/// them, and the attempt they belonged to is redone. `warden synth` keeps its candidate log with it.
public actor ResultsLog {
    private let descriptor: Int32
    private let path: String
    private let encoder: JSONEncoder

    /// How many bytes of a torn last line the opening removed (0 when the file was whole).
    let repairedBytes: Int

    public init(_ url: URL) throws {
        path = url.path
        descriptor = open(url.path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw WardenError("run.results", "cannot open results.jsonl: \(String(cString: strerror(errno)))", context: url.path)
        }
        do { repairedBytes = try Self.cutTornTail(descriptor, path: url.path) } catch {
            close(descriptor)
            throw error
        }
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    deinit { close(descriptor) }

    /// Truncates a regular file to just after its last newline; returns the bytes removed.
    static func cutTornTail(_ descriptor: Int32, path: String) throws -> Int {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw WardenError("run.results", "cannot stat results.jsonl: \(String(cString: strerror(errno)))", context: path)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG, status.st_size > 0 else { return 0 }
        let size = Int(status.st_size)
        var end = size
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while end > 0 {
            let start = max(0, end - buffer.count)
            let count = end - start
            let read = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(start)) }
            guard read == count else {
                throw WardenError("run.results", "cannot read results.jsonl: \(String(cString: strerror(errno)))", context: path)
            }
            if let newline = buffer[0..<count].lastIndex(of: 0x0a) {
                end = start + newline + 1
                break
            }
            end = start
        }
        guard end < size else { return 0 }
        guard ftruncate(descriptor, off_t(end)) == 0, fsync(descriptor) == 0 else {
            throw WardenError("run.results", "cannot cut the torn last line of results.jsonl: \(String(cString: strerror(errno)))", context: path)
        }
        return size - end
    }

    /// Appends one row and syncs it. A failed or short write is undone (the file is cut back to
    /// where it was), so the file never holds half a row, and the failure is thrown.
    func append(_ row: AttemptResult) throws {
        try append(row, key: row.key)
    }

    /// Appends any row (`key` names it in errors) the same way.
    public func append<Row: Encodable>(_ row: Row, key: String) throws {
        var line = try encoder.encode(row)
        line.append(0x0a)
        let name = URL(fileURLWithPath: path).lastPathComponent
        var status = stat()
        let before = fstat(descriptor, &status) == 0 ? status.st_size : -1
        let written = line.withUnsafeBytes { bytes in
            var result: Int
            repeat { result = write(descriptor, bytes.baseAddress, bytes.count) } while result < 0 && errno == EINTR
            return result
        }
        guard written == line.count else {
            let cause = written < 0 ? String(cString: strerror(errno)) : "only \(written) of \(line.count) bytes were written"
            var message = "cannot append the row of \(key) to \(name): \(cause)"
            if written > 0 && (before < 0 || ftruncate(descriptor, before) != 0) {
                message += "; the partial row stays and is cut off when the run resumes"
            }
            throw WardenError("run.results", message, context: path)
        }
        guard fsync(descriptor) == 0 else {
            throw WardenError("run.results", "cannot sync \(name) after the row of \(key): \(String(cString: strerror(errno)))", context: path)
        }
    }
}

/// Runs K attempts of every task with at most N episodes at a time, scoring each, writing
/// trajectories and result rows as they finish. Resuming skips finished attempts.
public struct BatchRunner: Sendable {
    public var directory: URL
    public var settings: RunSettings
    public var suite: TaskSuite
    public var workers: Int
    public var agentProfile: SandboxProfile
    public var evaluator: Evaluator
    /// A model for one attempt (stateful clients such as replay and the oracle need their own).
    public var makeModel: @Sendable (TaskInstance) throws -> any ModelClient
    /// Where tasks with an `image` get it (pulled and unpacked once, shared by their attempts).
    public var images = TaskImages()
    public var progress: RunProgress
    /// Where repairs, unfinished attempts and append failures are reported.
    public var logger: Logger
    /// Told of every episode's jail start, steps and end (live metrics).
    public var observer: (any EpisodeObserver)?

    public init(directory: URL, settings: RunSettings, suite: TaskSuite, workers: Int, agentProfile: SandboxProfile,
                evaluator: Evaluator, logger: Logger = Logger(label: "warden.run"),
                makeModel: @escaping @Sendable (TaskInstance) throws -> any ModelClient) {
        self.logger = logger
        self.directory = directory
        self.settings = settings
        self.suite = suite
        self.workers = workers
        self.agentProfile = agentProfile
        self.evaluator = evaluator
        self.makeModel = makeModel
        let plan = AttemptPlan.attempts(for: suite.tasks.map(\.instance.instanceID), attempts: settings.attempts,
                                        shard: settings.shard.flatMap(AttemptPlan.parseShard))
        self.progress = RunProgress(total: plan.count)
    }

    public var plan: [PlannedAttempt] {
        AttemptPlan.attempts(for: suite.tasks.map(\.instance.instanceID), attempts: settings.attempts,
                             shard: settings.shard.flatMap(AttemptPlan.parseShard))
    }

    /// Checks or writes config.json. A directory made with another configuration is refused
    /// unless `force`.
    public func prepareDirectory(force: Bool) throws {
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("trajectories"), withIntermediateDirectories: true)
        let configURL = directory.appendingPathComponent("config.json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if FileManager.default.fileExists(atPath: configURL.path) {
            // An unreadable file is not a missing one: it is never overwritten unread.
            let data: Data
            do { data = try Data(contentsOf: configURL) } catch {
                throw WardenError("run.config", "cannot read the run's configuration: \(error.localizedDescription)", context: configURL.path)
            }
            let decoded: RunSettings?
            do { decoded = try JSONDecoder().decode(RunSettings.self, from: data) } catch {
                logger.debug("config.json is not a run configuration", metadata: ["file": "\(configURL.path)", "cause": "\(error)"])
                decoded = nil
            }
            guard let existing = decoded else {
                if !force {
                    throw WardenError("run.config", "\(configURL.path) is not a Warden run configuration; use another --out, or --force to overwrite it")
                }
                try atomicWrite(encoder.encode(settings), to: configURL)
                return
            }
            let differences = settings.differences(from: existing)
            if !differences.isEmpty && !force {
                throw WardenError("run.config", "\(directory.path) holds a run with another configuration (\(differences.joined(separator: "; "))); "
                    + "use another --out, or --force to continue it with the new one")
            }
        }
        try atomicWrite(encoder.encode(settings), to: configURL)
    }

    /// Runs every unfinished attempt. Cancellation (SIGINT) stops new work; running episodes end
    /// as cancelled and are left unfinished, so the next run redoes them. An attempt that hit a
    /// harness failure (its row has an `error`) is recorded but not finished: resuming redoes it.
    /// A row that cannot be appended stops the run: the error names the file and the cause.
    public func run() async throws -> BatchReport {
        let resultsURL = directory.appendingPathComponent("results.jsonl")
        let log = try ResultsLog(resultsURL)
        if log.repairedBytes > 0 {
            logger.warning("removed a torn last line (\(log.repairedBytes) bytes) left by a kill; its attempt is redone",
                           metadata: ["file": "\(resultsURL.path)"])
        }
        let planned = Set(plan.map(\.key))
        let earlier = try readResults(resultsURL, logger: logger).filter { planned.contains($0.key) && $0.isFinished }
        let finished = Set(earlier.map(\.key))
        let todo = plan.filter { !finished.contains($0.key) }
        for row in earlier { progress.finished(row.key, result: row) }
        let tasks = Dictionary(uniqueKeysWithValues: suite.tasks.map { ($0.instance.instanceID, $0) })
        var appendFailure: WardenError?

        await withTaskGroup(of: WardenError?.self) { group in
            var iterator = todo.makeIterator()
            func startNext() -> Bool {
                guard !Task.isCancelled, let planned = iterator.next(), let task = tasks[planned.instanceID] else { return false }
                group.addTask {
                    let row = await attempt(planned, task: task)
                    defer { progress.finished(planned.key, result: row?.isFinished == true ? row : nil) }
                    guard let row else { return nil }
                    if let problem = row.error {
                        logger.warning("attempt not finished, redone on resume: \(problem)",
                                       metadata: ["instance": "\(planned.instanceID)", "attempt": "\(planned.attempt)"])
                    }
                    do {
                        try await log.append(row)
                        return nil
                    } catch {
                        return error as? WardenError ?? WardenError("run.results", "\(error)", context: resultsURL.path)
                    }
                }
                return true
            }
            for _ in 0..<max(1, workers) where startNext() {}
            while let outcome = await group.next() {
                if let failure = outcome, appendFailure == nil { appendFailure = failure }
                if appendFailure == nil { _ = startNext() }
            }
        }
        if let failure = appendFailure {
            throw WardenError(failure.code, failure.message + ". The run stopped; the trajectories of the attempts that ran are in "
                              + directory.appendingPathComponent("trajectories").path + ", and resuming redoes the attempts that have no row",
                              context: failure.context)
        }
        return try writeSummaries()
    }

    /// One attempt: a fresh checkout and jail, the agent loop, scoring. Nil when it was cancelled.
    func attempt(_ planned: PlannedAttempt, task: SuiteTask) async -> AttemptResult? {
        let instance = task.instance
        let relative = "trajectories/\(instance.instanceID)/\(planned.attempt).jsonl"
        progress.working(planned.key, "\(instance.instanceID) #\(planned.attempt): starting")
        let work = evaluator.workRoot.appendingPathComponent("attempt-\(UUID().uuidString)")
        func failed(_ error: Error) -> AttemptResult {
            AttemptResult(instanceID: instance.instanceID, attempt: planned.attempt, exitStatus: .sandboxError, resolved: false,
                          resolution: nil, failToPassPassed: 0, failToPassTotal: instance.failToPass.count, passToPassPassed: 0,
                          passToPassTotal: instance.passToPass.count, steps: 0, formatErrors: 0, promptTokens: 0, completionTokens: 0,
                          episodeSeconds: 0, scoreSeconds: 0, modelVersions: [], patch: "", submitted: false, trajectory: relative,
                          error: "\(error)")
        }
        let model: any ModelClient
        do { model = try makeModel(instance) } catch { return failed(error) }
        var spec = EpisodeSpec(task: instance, repository: task.repository, origin: task.origin, configuration: settings.agent,
                               profile: agentProfile, workDirectory: work, evaluator: evaluator, modelName: model.name,
                               wardenVersion: settings.wardenVersion)
        spec.logger[metadataKey: "attempt"] = "\(planned.attempt)"
        spec.observer = observer
        do {
            spec.image = try await images.image(for: instance)
            spec.repository = try await task.repository(in: spec.image, images: images)
        } catch {
            if Task.isCancelled { return nil }
            return failed(error)
        }
        let episode: Episode
        do { episode = try await Episode.prepare(spec, trajectory: directory.appendingPathComponent(relative)) } catch {
            if Task.isCancelled { return nil }
            return failed(error)
        }
        let progress = self.progress
        let loop = AgentLoop(model: model, episode: episode, onEvent: { event in
            if case let .step(step) = event {
                progress.working(planned.key, "\(instance.instanceID) #\(planned.attempt): step \(step.index)")
            }
        })
        let result: Result<TrajectoryFinal, any Error>
        do { result = .success(try await loop.run()) } catch { result = .failure(error) }
        for problem in await episode.close() {
            logger.warning("\(problem)", metadata: ["task": "\(instance.instanceID)", "attempt": "\(planned.attempt)"])
        }
        let final: TrajectoryFinal
        switch result {
        case let .success(value): final = value
        case let .failure(error):
            if Task.isCancelled { return nil }
            return failed(error)
        }
        if final.exitStatus == .cancelled && Task.isCancelled { return nil }
        let score = final.score
        let scoringProblem: String? = score != nil ? nil : "scoring failed: \(final.scoreError ?? "the episode ended without being scored")"
        let scoreSeconds = score.map { ($0.testMilliseconds + $0.overheadMilliseconds) / 1000 } ?? 0
        return AttemptResult(
            instanceID: instance.instanceID, attempt: planned.attempt, exitStatus: final.exitStatus, resolved: score?.resolved ?? false,
            resolution: score?.resolution?.rawValue, failToPassPassed: score?.testsStatus?.failToPass.success.count ?? 0,
            failToPassTotal: instance.failToPass.count, passToPassPassed: score?.testsStatus?.passToPass.success.count ?? 0,
            passToPassTotal: instance.passToPass.count, steps: final.steps, formatErrors: final.formatErrors,
            promptTokens: final.promptTokens, completionTokens: final.completionTokens,
            episodeSeconds: max(0, final.wallTimeMs / 1000 - scoreSeconds), scoreSeconds: scoreSeconds,
            modelVersions: final.modelVersions, patch: final.submission ?? final.finalDiff, submitted: final.submission != nil,
            trajectory: relative, error: scoringProblem)
    }

    /// Rewrites preds.jsonl and report.json from results.jsonl.
    @discardableResult
    public func writeSummaries() throws -> BatchReport {
        try Self.writeSummaries(directory: directory, taskIDs: settings.taskIDs, attempts: settings.attempts, modelName: settings.model)
    }

    public static func writeSummaries(directory: URL, taskIDs: [String], attempts: Int, modelName: String) throws -> BatchReport {
        let results = try readResults(directory.appendingPathComponent("results.jsonl"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var predictions = Data()
        let first = Dictionary(grouping: results, by: \.instanceID).compactMapValues { rows in rows.min { $0.attempt < $1.attempt } }
        for id in first.keys.sorted() {
            guard let row = first[id] else { continue }
            predictions += try encoder.encode(["instance_id": id, "model_name_or_path": modelName, "model_patch": row.patch])
            predictions.append(0x0a)
        }
        try atomicWrite(predictions, to: directory.appendingPathComponent("preds.jsonl"))
        let report = BatchReport(results: results, taskIDs: taskIDs, attemptsPerTask: attempts)
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try atomicWrite(encoder.encode(report), to: directory.appendingPathComponent("report.json"))
        return report
    }
}

extension SuiteTask {
    /// The repository episodes and scoring read: `repository`, or the one the task's image
    /// keeps when the task takes it from there.
    public func repository(in image: JailImage?, images: TaskImages) async throws -> URL {
        guard repositoryInImage else { return repository }
        guard let image else {
            throw WardenError("tasks.repository", "the task's repository was to come from its image, but it has none; pass --repos with it",
                              context: instance.instanceID)
        }
        return try await images.repository(in: image)
    }
}
