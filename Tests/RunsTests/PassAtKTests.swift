import Runs
import Testing
import WardenCore

@Suite("pass@k and run reports")
struct PassAtKTests {
    @Test("the unbiased estimator matches hand-computed values")
    func estimator() {
        // n=5, c=2, k=1: 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
        #expect(abs(passAtK(attempts: 5, resolved: 2, k: 1) - 0.4) < 1e-12)
        // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
        #expect(abs(passAtK(attempts: 5, resolved: 2, k: 2) - 0.7) < 1e-12)
        // n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 0.916666...
        #expect(abs(passAtK(attempts: 10, resolved: 3, k: 5) - (1 - 21.0 / 252.0)) < 1e-12)
        // n-c < k: certain.
        #expect(passAtK(attempts: 4, resolved: 3, k: 2) == 1)
        #expect(passAtK(attempts: 4, resolved: 0, k: 2) == 0)
        #expect(passAtK(attempts: 1, resolved: 1, k: 1) == 1)
    }

    func row(_ id: String, _ attempt: Int, resolved: Bool, status: EpisodeExitStatus = .submitted) -> AttemptResult {
        AttemptResult(instanceID: id, attempt: attempt, exitStatus: status, resolved: resolved, resolution: nil, failToPassPassed: 0,
                      failToPassTotal: 1, passToPassPassed: 0, passToPassTotal: 1, steps: 3, formatErrors: 0, promptTokens: 10,
                      completionTokens: 5, episodeSeconds: 1, scoreSeconds: 2, modelVersions: ["m"], patch: "", submitted: true,
                      trajectory: "t", error: nil)
    }

    @Test("the report averages over tasks and counts unfinished tasks as unresolved; pass@k only over tasks with k finished attempts")
    func report() throws {
        var failedScoring = row("d", 2, resolved: false)
        failedScoring.error = "scoring failed: the jail could not start"
        let results = [row("a", 1, resolved: true), row("a", 2, resolved: false), row("b", 1, resolved: false),
                       row("b", 2, resolved: true, status: .stepLimit), row("d", 1, resolved: true), failedScoring]
        let report = BatchReport(results: results, taskIDs: ["a", "b", "c", "d"], attemptsPerTask: 2)
        #expect(report.tasks == 4)
        #expect(report.finishedAttempts == 5)
        #expect(report.unfinishedAttempts == 1)
        #expect(abs(report.resolvedRate - 2.0 / 4.0) < 1e-12)
        #expect(abs(report.passAt1 - (0.5 + 0.5 + 0 + 1) / 4) < 1e-12)
        // a and b have 2 finished attempts each, one resolved: pass@2 = 1 for both. c (none) and
        // d (one finished, one harness failure) would pull the estimate down or up: left out.
        #expect(try #require(report.passAtK) == 1)
        #expect(report.tasksBelowK == ["c", "d"])
        #expect(report.exitStatuses == ["submitted": 4, "step_limit": 1])
        #expect(report.promptTokens == 50)
        #expect(report.summary.contains("pass@2 100.0% over 2 task(s)"))
        #expect(report.summary.contains("2 task(s) with fewer than 2 finished attempts, left out of pass@2: c, d"))
        #expect(BatchReport(results: [row("a", 1, resolved: true)], taskIDs: ["a"], attemptsPerTask: 3).passAtK == nil)
    }

    @Test("shards are disjoint, cover every attempt and do not depend on task order")
    func shards() {
        let ids = (1...40).map { "task-\($0)" }
        let all = Set(AttemptPlan.attempts(for: ids, attempts: 3, shard: nil).map(\.key))
        let parts = (1...4).map { Set(AttemptPlan.attempts(for: ids.shuffled(), attempts: 3, shard: ($0, 4)).map(\.key)) }
        #expect(parts.reduce(Set<String>()) { $0.union($1) } == all)
        #expect(parts.map(\.count).reduce(0, +) == all.count)
        #expect(parts.allSatisfy { !$0.isEmpty })
        #expect(AttemptPlan.parseShard("2/8")! == (2, 8))
        #expect(AttemptPlan.parseShard("9/8") == nil)
        #expect(AttemptPlan.parseShard("0/3") == nil)
    }
}
