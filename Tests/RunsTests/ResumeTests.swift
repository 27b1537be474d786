import Agent
import Foundation
import Runs
import Sandbox
import Scoring
import Tasks
import Testing
import WardenCore
import Workspace

/// Resuming after harness failures, against a real repository, jail and scorer.
@Suite("run resume after harness failures")
struct ResumeTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("a scoring failure is recorded with its cause, not counted as finished, and redone on resume")
    func scoringFailureIsRedone() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let cache = root.appendingPathComponent("cache")
        var suite = try TaskSuite.load(Self.repositoryRoot.appendingPathComponent("Tasks/starter/warden__wrapkit-1").path, cache: cache)
        // A set-up command makes scoring need the set-up profile; the first run is given none.
        suite.tasks[0].instance.setup = ["true"]
        let instance = suite.tasks[0].instance
        let agent = AgentConfiguration()
        let settings = RunSettings(suite: "starter", filter: nil, limit: nil, attempts: 1, model: "oracle", modelSettings: [:], agent: agent,
                                   shard: nil, taskIDs: [instance.instanceID], wardenVersion: "test")
        let directory = root.appendingPathComponent("run")
        func runner(setupProfile: SandboxProfile?) throws -> BatchRunner {
            let work = root.appendingPathComponent("work")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            return BatchRunner(directory: directory, settings: settings, suite: suite, workers: 1, agentProfile: try SandboxProfile.load("agent"),
                               evaluator: Evaluator(profile: try SandboxProfile.load("tests"), setupProfile: setupProfile, workRoot: work),
                               makeModel: { task in OracleModel(goldPatch: task.goldPatch ?? "", protocol: agent.protocol.handler) })
        }

        let first = try runner(setupProfile: nil)
        try first.prepareDirectory(force: false)
        let failed = try await first.run()
        #expect(failed.finishedAttempts == 0)
        #expect(failed.unfinishedAttempts == 1)
        #expect(failed.summary.contains("1 attempt(s) hit a harness failure"))
        let rows = try SFTExport.readResultRows(directory.appendingPathComponent("results.jsonl")).rows.map(\.row)
        #expect(rows.count == 1)
        let error = try #require(rows.first?.error)
        #expect(error.hasPrefix("scoring failed: "))
        #expect(error.contains("no set-up profile"), "the cause is kept: \(error)")

        let second = try runner(setupProfile: try SandboxProfile.load("setup"))
        try second.prepareDirectory(force: false)
        let redone = try await second.run()
        #expect(redone.finishedAttempts == 1)
        #expect(redone.unfinishedAttempts == 0)
        #expect(redone.perTask.first?.resolved == 1)
        // The failed row stays as a record; the redone one, appended after it, is the attempt's result.
        let lines = try String(contentsOf: directory.appendingPathComponent("results.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
    }
}
