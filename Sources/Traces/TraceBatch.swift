import Foundation
import Logging
import Tasks
import WardenCore

/// Traces many tasks' tests: N tasks at a time, each task's results written under
/// `OUT/INSTANCE/` and marked done by `OUT/INSTANCE/done.json` (written last), so a run that
/// is started again skips the tasks it finished. The caller shards the task list.
public struct TraceBatch: Sendable {
    public var tracer: Tracer
    public var output: URL
    public var selection: TestSelection
    public var beforeAfter: Bool
    public var workers: Int

    /// What happened to one task.
    public struct TaskSummary: Codable, Sendable {
        public var instanceID: String
        /// `traced`, `skipped` (not pytest), `resumed` (done by an earlier run) or `error`.
        public var status: String
        public var reason: String?
        public var traces: Int
        public var outcomes: [String: Int]
        public var truncated: Int
        /// FAIL_TO_PASS tests whose frames differ between base and gold (with `--before-after`).
        public var differing: Int?

        enum CodingKeys: String, CodingKey {
            case instanceID = "instance_id", status, reason, traces, outcomes, truncated, differing
        }
    }

    public init(tracer: Tracer, output: URL, selection: TestSelection, beforeAfter: Bool, workers: Int) {
        self.tracer = tracer
        self.output = output
        self.selection = selection
        self.beforeAfter = beforeAfter
        self.workers = max(1, workers)
    }

    /// Traces `tasks`, calling `progress` with each task's summary and how many of them have
    /// ended, one call at a time, as each task ends.
    public func run(_ tasks: [SuiteTask], progress: (TaskSummary, Int) -> Void) async throws -> [TaskSummary] {
        var summaries: [TaskSummary] = []
        try await withThrowingTaskGroup(of: TaskSummary.self) { group in
            var next = tasks.makeIterator()
            func startNext() {
                guard let task = next.next() else { return }
                group.addTask { await self.trace(task) }
            }
            for _ in 0..<workers { startNext() }
            while let summary = try await group.next() {
                summaries.append(summary)
                progress(summary, summaries.count)
                startNext()
            }
        }
        return summaries.sorted { $0.instanceID < $1.instanceID }
    }

    /// One task; a failure of the harness for this task is its `error` row, and the batch goes on.
    func trace(_ task: SuiteTask) async -> TaskSummary {
        let instance = task.instance
        let folder = output.appendingPathComponent(instance.instanceID)
        let done = folder.appendingPathComponent("done.json")
        if let data = FileManager.default.contents(atPath: done.path) {
            do {
                var summary = try JSONDecoder().decode(TaskSummary.self, from: data)
                summary.status = "resumed"
                return summary
            } catch {
                // A done marker cut short by a kill: the task is traced again.
                Logger(label: "warden.trace").debug("unreadable done.json; tracing the task again", metadata: ["file": "\(done.path)", "cause": "\(error)"])
            }
        }
        var summary = TaskSummary(instanceID: instance.instanceID, status: "traced", traces: 0, outcomes: [:], truncated: 0)
        guard Tracer.tracesTests(of: instance) else {
            summary.status = "skipped"
            summary.reason = "its tests do not run under pytest: \(instance.testCommand ?? "")"
            return summary
        }
        do {
            let ids = selection.testIDs(of: instance)
            let after = try await tracer.traceTests(instance, repository: task.repository, testIDs: ids, patch: instance.goldPatch,
                                                    output: folder.appendingPathComponent("gold"))
            summary.traces = after.rows.count
            for row in after.rows { summary.outcomes[row.outcome, default: 0] += 1 }
            summary.truncated = after.rows.filter(\.truncated).count
            if after.rows.isEmpty { summary.reason = "the tracer wrote no rows: \(after.log.suffix(500))" }
            if beforeAfter {
                let before = try await tracer.traceTests(instance, repository: task.repository, testIDs: instance.failToPass, patch: nil,
                                                         output: folder.appendingPathComponent("base"))
                let pairs = BeforeAfter.pair(instanceID: instance.instanceID, testIDs: instance.failToPass, before: before.rows, after: after.rows)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                var lines = Data()
                for pair in pairs {
                    lines.append(try encoder.encode(pair))
                    lines.append(0x0A)
                }
                try lines.write(to: folder.appendingPathComponent("before_after.jsonl"), options: .atomic)
                summary.differing = pairs.filter(\.differs).count
            }
            try JSONEncoder().encode(summary).write(to: done, options: .atomic)
        } catch {
            summary.status = "error"
            summary.reason = "\(error)"
        }
        return summary
    }
}
