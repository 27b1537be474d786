import Foundation
import WardenCore

/// The unbiased pass@k estimator (Chen et al., 2021) for one task: 1 - C(n-c, k) / C(n, k),
/// with n attempts of which c resolved.
public func passAtK(attempts n: Int, resolved c: Int, k: Int) -> Double {
    guard n > 0, k > 0, c > 0 else { return 0 }
    let k = min(k, n)
    if n - c < k { return 1 }
    // The product form avoids huge binomials: C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i).
    var failAll = 1.0
    for i in (n - c + 1)...n {
        failAll *= 1 - Double(k) / Double(i)
    }
    return 1 - failAll
}

/// `RUN_DIR/report.json`: rates, counts per exit status, tokens, time, and a row per task.
public struct BatchReport: Sendable, Codable, Hashable {
    public struct TaskRow: Sendable, Codable, Hashable {
        public var instanceID: String
        public var attempts: Int
        public var resolved: Int
        public var firstAttemptResolved: Bool
        public var exitStatuses: [String: Int]

        enum CodingKeys: String, CodingKey {
            case instanceID = "instance_id", attempts, resolved, firstAttemptResolved = "first_attempt_resolved"
            case exitStatuses = "exit_statuses"
        }
    }

    public var tasks: Int
    public var attemptsPerTask: Int
    public var finishedAttempts: Int
    /// Attempts whose row records a harness failure (not run, or not scored); resuming redoes them.
    public var unfinishedAttempts: Int
    /// Share of tasks whose first attempt resolved them (the score of preds.jsonl).
    public var resolvedRate: Double
    /// The mean over tasks of the share of resolved attempts.
    public var passAt1: Double
    /// The unbiased pass@k with k = attempts per task, over the tasks with at least k finished
    /// attempts only (nil when there are none): a task with fewer would bias it.
    public var passAtK: Double?
    /// The tasks left out of pass@k because they have fewer than k finished attempts.
    public var tasksBelowK: [String]
    public var exitStatuses: [String: Int]
    public var promptTokens: Int
    public var completionTokens: Int
    public var episodeSeconds: Double
    public var scoreSeconds: Double
    public var perTask: [TaskRow]

    enum CodingKeys: String, CodingKey {
        case tasks, attemptsPerTask = "attempts_per_task", finishedAttempts = "finished_attempts"
        case unfinishedAttempts = "unfinished_attempts", resolvedRate = "resolved_rate"
        case passAt1 = "pass@1", passAtK = "pass@k", tasksBelowK = "tasks_below_k", exitStatuses = "exit_statuses", promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens", episodeSeconds = "episode_seconds", scoreSeconds = "score_seconds"
        case perTask = "per_task"
    }

    /// Builds the report from results; `taskIDs` lists every task of the run (tasks with no
    /// finished attempt count as unresolved in the resolved rate and pass@1). Rows that record a
    /// harness failure are counted apart and graded as nothing.
    public init(results allResults: [AttemptResult], taskIDs: [String], attemptsPerTask: Int) {
        let results = allResults.filter(\.isFinished)
        let byTask = Dictionary(grouping: results, by: \.instanceID)
        tasks = taskIDs.count
        self.attemptsPerTask = attemptsPerTask
        finishedAttempts = results.count
        unfinishedAttempts = allResults.count - results.count
        perTask = taskIDs.sorted().map { id in
            let rows = byTask[id] ?? []
            return TaskRow(instanceID: id, attempts: rows.count, resolved: rows.filter(\.resolved).count,
                           firstAttemptResolved: rows.first { $0.attempt == 1 }?.resolved ?? false,
                           exitStatuses: Dictionary(grouping: rows, by: \.exitStatus.rawValue).mapValues(\.count))
        }
        let denominator = Double(max(1, tasks))
        resolvedRate = Double(perTask.filter(\.firstAttemptResolved).count) / denominator
        passAt1 = perTask.map { $0.attempts == 0 ? 0 : Double($0.resolved) / Double($0.attempts) }.reduce(0, +) / denominator
        let complete = perTask.filter { $0.attempts >= attemptsPerTask }
        tasksBelowK = perTask.filter { $0.attempts < attemptsPerTask }.map(\.instanceID)
        passAtK = complete.isEmpty ? nil
            : complete.map { Runs.passAtK(attempts: $0.attempts, resolved: $0.resolved, k: attemptsPerTask) }.reduce(0, +) / Double(complete.count)
        exitStatuses = Dictionary(grouping: results, by: \.exitStatus.rawValue).mapValues(\.count)
        promptTokens = results.map(\.promptTokens).reduce(0, +)
        completionTokens = results.map(\.completionTokens).reduce(0, +)
        episodeSeconds = results.map(\.episodeSeconds).reduce(0, +)
        scoreSeconds = results.map(\.scoreSeconds).reduce(0, +)
    }

    /// The summary printed at the end of a run.
    public var summary: String {
        let width = max(8, perTask.map(\.instanceID.count).max() ?? 0)
        var text = "instance".padding(toLength: width, withPad: " ", startingAt: 0) + "  resolved  statuses\n"
        for row in perTask {
            text += row.instanceID.padding(toLength: width, withPad: " ", startingAt: 0)
            text += "  " + "\(row.resolved)/\(row.attempts)".padding(toLength: 8, withPad: " ", startingAt: 0) + "  "
            text += row.exitStatuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        }
        text += String(format: "\n%d task(s) x %d attempt(s), %d finished. resolved %.1f%%  pass@1 %.1f%%",
                       tasks, attemptsPerTask, finishedAttempts, resolvedRate * 100, passAt1 * 100)
        if attemptsPerTask > 1 {
            let over = tasks - tasksBelowK.count
            text += passAtK.map { String(format: "  pass@%d %.1f%% over %d task(s)", attemptsPerTask, $0 * 100, over) }
                ?? "  pass@\(attemptsPerTask): no task has \(attemptsPerTask) finished attempts"
            if !tasksBelowK.isEmpty {
                text += "\n\(tasksBelowK.count) task(s) with fewer than \(attemptsPerTask) finished attempts, left out of pass@\(attemptsPerTask): "
                    + tasksBelowK.prefix(10).joined(separator: ", ") + (tasksBelowK.count > 10 ? ", ..." : "")
            }
        }
        text += "\n"
        if unfinishedAttempts > 0 {
            text += "\(unfinishedAttempts) attempt(s) hit a harness failure (see the error field of results.jsonl); run again to redo them\n"
        }
        text += "exit statuses: " + exitStatuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        text += String(format: "tokens: %d prompt + %d completion; time: %.0f s in episodes, %.0f s scoring\n",
                       promptTokens, completionTokens, episodeSeconds, scoreSeconds)
        return text
    }
}
