import Foundation
import Logging
import Runs
import Sandbox
import Scoring
import WardenCore

/// What `warden synth` is asked to do.
public struct SynthConfiguration: Sendable {
    public var output: URL
    /// Tasks to keep, two-location ones included (about a fifth of them).
    public var maxTasks: Int
    public var seed: UInt64
    public var workers: Int
    /// Seconds one suite run may take; by default four times the slowest baseline run, at least 30.
    public var timeout: Double?
    /// Leave the failing tests' files in the agent's checkout (SWE-smith) instead of hiding them (R2E-Gym).
    public var keepTests: Bool
    /// Candidates tried at most, single and two-location together; by default 15 per task wanted.
    public var maxCandidates: Int?
    public var baselineRuns: Int

    public init(output: URL, maxTasks: Int = 20, seed: UInt64 = 0, workers: Int = 2, timeout: Double? = nil, keepTests: Bool = false,
                maxCandidates: Int? = nil, baselineRuns: Int = 3) {
        self.output = output
        self.maxTasks = maxTasks
        self.seed = seed
        self.workers = workers
        self.timeout = timeout
        self.keepTests = keepTests
        self.maxCandidates = maxCandidates
        self.baselineRuns = baselineRuns
    }

    var candidateBudget: Int { maxCandidates ?? maxTasks * 15 }
    /// Two-location tasks wanted: a fifth, at least one from three tasks up (they combine kept single ones).
    var pairTarget: Int { maxTasks >= 3 ? max(1, maxTasks / 5) : 0 }
}

/// How far synthesis has got, for a progress line.
public struct SynthProgress: Sendable {
    public var phase: String
    public var tried: Int
    public var kept: Int
    public var dropped: Int
    /// The last candidate's outcome (`kept ID` or the reason it was dropped).
    public var last: String?
}

/// What synthesis made: counts of candidates tried, kept and dropped by reason.
public struct SynthSummary: Sendable, Codable, Hashable {
    public var source: String
    public var tried = 0
    public var kept = 0
    public var keptTwoLocation = 0
    public var dropped: [String: Int] = [:]
    public var kinds: [String: Int] = [:]
    public var baselineTests = 0
    public var flakyTests: [String] = []
    public var seconds = 0.0

    public var text: String {
        var lines = ["\(source): tried \(tried) candidates, kept \(kept) (\(keptTwoLocation) two-location), dropped \(tried - kept)"]
        for (reason, count) in dropped.sorted(by: { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }) {
            lines.append("  dropped \(count): \(reason)")
        }
        lines.append("  kinds: " + kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        lines.append("  baseline: \(baselineTests) stable passing tests" + (flakyTests.isEmpty ? "" : ", \(flakyTests.count) flaky dropped"))
        lines.append(String(format: "  %.0f s, %.1f candidates validated per minute", seconds, seconds > 0 ? Double(tried) * 60 / seconds : 0))
        return lines.joined(separator: "\n")
    }
}

/// Why the repository cannot be synthesized from, or the output cannot be used.
public struct SynthRefusal: Error, CustomStringConvertible {
    public var description: String
}

/// One row of the candidate log: what was tried and what came of it.
struct CandidateRecord: Codable, Sendable {
    var mutations: [Mutation]
    /// `kept` or the reason it was dropped.
    var outcome: String
    var taskID: String?
    var failToPass: [String]?
    var passToPass: [String]?

    var key: String { Self.key(mutations) }
    static func key(_ mutations: [Mutation]) -> String { mutations.map(\.identity).joined(separator: " + ") }
}

/// Turns a repository whose tests pass into validated tasks: a stable baseline, mutants at
/// the syntax-tree level, the keep rules, and a suite written one task folder at a time.
public struct Synthesizer: Sendable {
    public var source: SynthSource
    public var configuration: SynthConfiguration
    public var profile: SandboxProfile
    public var issueWriter: IssueWriter
    public var progress: @Sendable (SynthProgress) -> Void

    public init(source: SynthSource, configuration: SynthConfiguration, profile: SandboxProfile, issueWriter: IssueWriter = .template,
                progress: @escaping @Sendable (SynthProgress) -> Void = { _ in }) {
        self.source = source
        self.configuration = configuration
        self.profile = profile
        self.issueWriter = issueWriter
        self.progress = progress
    }

    /// Synthesizes into `configuration.output`, resuming from its candidate log; `work` holds the checkouts.
    public func run(work: URL) async throws -> SynthSummary {
        let clock = ContinuousClock()
        let started = clock.now
        let state = configuration.output.appendingPathComponent(".synth")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        try checkSettings(state)
        // Folders of tasks a killed run was still building.
        for entry in try FileManager.default.contentsOfDirectory(atPath: state.path) where entry.hasPrefix("partial-") {
            try FileManager.default.removeItem(at: state.appendingPathComponent(entry))
        }
        let workers = try (0..<max(1, configuration.workers)).map {
            try SuiteWorker(source: source, work: work.appendingPathComponent("worker-\($0)"), profile: profile)
        }
        let pool = WorkerPool(workers)
        let baseline: Baseline
        if let saved = Baseline.load(state) {
            baseline = saved
        } else {
            progress(SynthProgress(phase: "baseline", tried: 0, kept: 0, dropped: 0))
            baseline = try await Baseline.measure(source, runs: configuration.baselineRuns, pool: pool)
        }
        try atomicWrite(try Self.encoder.encode(baseline), to: state.appendingPathComponent("baseline.json"))
        if let refusal = baseline.refusal { throw SynthRefusal(description: "\(source.name) cannot be synthesized from: \(refusal)") }
        let timeout = configuration.timeout ?? max(30, baseline.slowestSeconds * 4)

        let log = try ResultsLog(state.appendingPathComponent("candidates.jsonl"))
        let tally = Tally(configuration: configuration, previous: try Self.records(state), progress: progress)
        let writer = TaskWriter(source: source, output: configuration.output, baseline: baseline, keepTests: configuration.keepTests,
                                issueWriter: issueWriter, seed: configuration.seed)

        progress(SynthProgress(phase: "mutating", tried: 0, kept: 0, dropped: 0))
        var mutations: [Mutation] = []
        for mutator in Mutators.all {
            let files = source.sourceFiles(for: mutator)
            guard !files.isEmpty else { continue }
            mutations += try await pool.with { try await mutator.mutations(of: files, checkout: $0.checkout, shell: $0.shell) }
        }
        guard !mutations.isEmpty else { throw SynthRefusal(description: "\(source.name) has no source files Warden can mutate (Python, JavaScript, Rust)") }
        var generator = SplitMix64(seed: configuration.seed)  // the same shuffle for the same seed on every machine
        mutations.shuffle(using: &generator)
        mutations = Self.interleavedByKind(mutations)

        let check = Validation(baseline: baseline, timeout: timeout, command: source.command())
        try await runCandidates(mutations.map { [$0] }, tally: tally, pool: pool, check: check, writer: writer, log: log, pairs: false)
        let singles = await tally.keptSingles()
        var pairs: [[Mutation]] = []
        for (index, first) in singles.enumerated() {
            for second in singles[(index + 1)...] where first.file != second.file { pairs.append([first, second]) }
        }
        pairs.shuffle(using: &generator)
        try await runCandidates(pairs, tally: tally, pool: pool, check: check, writer: writer, log: log, pairs: true)

        var summary = await tally.summary(source: source.name)
        summary.baselineTests = baseline.passing.count
        summary.flakyTests = baseline.flaky
        let elapsed = clock.now - started
        summary.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        try atomicWrite(try Self.encoder.encode(summary), to: state.appendingPathComponent("summary.json"))
        return summary
    }

    /// Tries candidates on every worker at once until the tally has enough (singles or pairs).
    private func runCandidates(_ candidates: [[Mutation]], tally: Tally, pool: WorkerPool, check: Validation, writer: TaskWriter,
                               log: ResultsLog, pairs: Bool) async throws {
        let queue = CandidateQueue(candidates)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, configuration.workers) {
                group.addTask {
                    next: while let candidate = await queue.next() {
                        claiming: while true {
                            switch await tally.claim(candidate, pairs: pairs) {
                            case .take: break claiming
                            case .skip: continue next
                            case .stop: return
                            case .wait: try await Task.sleep(for: .milliseconds(200))
                            }
                        }
                        let verdict = try await pool.with { try await check.judge(candidate, on: $0) }
                        var record = CandidateRecord(mutations: candidate, outcome: verdict.dropReason ?? "kept",
                                                     failToPass: verdict.failToPass, passToPass: verdict.passToPass)
                        if verdict.dropReason == nil, let reason = await tally.equivalence(record) {
                            record.outcome = reason
                        }
                        if record.outcome == "kept" {
                            record.taskID = try await writer.write(record, output: verdict.output)
                        }
                        try await log.append(record, key: record.key)
                        await tally.record(record)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func checkSettings(_ state: URL) throws {
        let url = state.appendingPathComponent("settings.json")
        let settings: [String: String] = [
            "source": source.name, "commit": source.commit, "seed": String(configuration.seed),
            "keep_tests": String(configuration.keepTests), "test_cmd": source.testCommand,
        ]
        if let data = FileManager.default.contents(atPath: url.path) {
            let previous = (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
            let changed = settings.keys.sorted().filter { previous[$0] != settings[$0] }
            guard changed.isEmpty else {
                throw SynthRefusal(description: "\(configuration.output.path) holds tasks synthesized with other settings (\(changed.joined(separator: ", ")) changed): use another --out")
            }
            return
        }
        try atomicWrite(try Self.encoder.encode(settings), to: url)
    }

    /// The mutations one kind after another (in the order the kinds first appear), so that a
    /// short run covers many kinds rather than the most common ones.
    static func interleavedByKind(_ mutations: [Mutation]) -> [Mutation] {
        var kinds: [String] = []
        var byKind: [String: [Mutation]] = [:]
        for mutation in mutations {
            if byKind[mutation.kind] == nil { kinds.append(mutation.kind) }
            byKind[mutation.kind, default: []].append(mutation)
        }
        var result: [Mutation] = []
        var round = 0
        while result.count < mutations.count {
            for kind in kinds where round < byKind[kind, default: []].count { result.append(byKind[kind, default: []][round]) }
            round += 1
        }
        return result
    }

    /// The candidate log's rows (a torn last row is cut off when the log opens).
    static func records(_ state: URL) throws -> [CandidateRecord] {
        guard let data = FileManager.default.contents(atPath: state.appendingPathComponent("candidates.jsonl").path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONDecoder().decode(CandidateRecord.self, from: Data($0.utf8))
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// The tests of the passing state: three runs, flaky tests left out.
struct Baseline: Codable, Sendable {
    var passing: [String]
    var flaky: [String]
    /// Test id -> its test file, where the parser's ids do not say.
    var files: [String: String]
    var slowestSeconds: Double
    var refusal: String?

    func file(of test: String) -> String? {
        if let file = files[test] { return file }
        guard let separator = test.range(of: "::") else { return nil }
        return String(test[..<separator.lowerBound])
    }

    static func load(_ state: URL) -> Baseline? {
        guard let data = FileManager.default.contents(atPath: state.appendingPathComponent("baseline.json").path) else { return nil }
        do { return try JSONDecoder().decode(Baseline.self, from: data) } catch {
            // Written atomically, so only an older format gets here: measure again.
            Logger(label: "warden.synth").debug("baseline.json is unreadable, measuring again: \(error)")
            return nil
        }
    }

    static func measure(_ source: SynthSource, runs: Int, pool: WorkerPool) async throws -> Baseline {
        let command = source.command()
        let results = try await withThrowingTaskGroup(of: SuiteRunResult.self) { group in
            for _ in 0..<max(1, runs) {
                group.addTask { try await pool.with { try await $0.run([], command: command, timeout: 1800) } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let slowest = results.map(\.seconds).max() ?? 0
        var baseline = Baseline(passing: [], flaky: [], files: [:], slowestSeconds: slowest)
        if results.contains(where: \.timedOut) {
            baseline.refusal = "the test suite did not finish within 1800 s"
            return baseline
        }
        let ids = Set(results.flatMap(\.statuses.keys))
        guard !ids.isEmpty else {
            baseline.refusal = "`\(command)` reported no tests (output: \(results.first?.output.suffix(500) ?? ""))"
            return baseline
        }
        baseline.flaky = ids.filter { id in Set(results.map { $0.statuses[id] }).count > 1 }.sorted()
        let stable = ids.subtracting(baseline.flaky)
        baseline.passing = stable.filter { results[0].statuses[$0] == .passed }.sorted()
        let failing = stable.filter { results[0].statuses[$0]?.isFailure == true }.sorted()
        if !failing.isEmpty {
            baseline.refusal = "its suite does not pass: \(failing.count) tests fail in every run (\(failing.prefix(5).joined(separator: ", ")))"
        } else if baseline.passing.isEmpty {
            baseline.refusal = "no test passes in all \(runs) runs (flaky: \(baseline.flaky.prefix(5).joined(separator: ", ")))"
        }
        // Which file holds which test, for parsers whose ids do not name it: one run per file.
        if baseline.refusal == nil, source.logParser != .pytest, source.testCommand.contains("{test_files}") {
            let files = source.testFiles
            let mapped = try await withThrowingTaskGroup(of: (String, [String]).self) { group in
                for file in files {
                    group.addTask {
                        let run = try await pool.with { try await $0.run([], command: source.command(testFiles: [file]), timeout: 1800) }
                        return (file, Array(run.statuses.keys))
                    }
                }
                var mapped: [String: String] = [:]
                for try await (file, ids) in group { for id in ids { mapped[id] = file } }
                return mapped
            }
            baseline.files = mapped
        }
        return baseline
    }
}

/// The keep rules for one candidate.
struct Validation: Sendable {
    var baseline: Baseline
    var timeout: Double
    var command: String

    struct Verdict: Sendable {
        var dropReason: String?
        var failToPass: [String]?
        var passToPass: [String]?
        var output = ""
    }

    static let reasons = (
        timeout: "the suite did not finish within the timeout",
        equivalent: "equivalent: no test fails",
        unstable: "no test fails in both runs with the mutant",
        noPassToPass: "no test passes with the mutant (PASS_TO_PASS empty)",
        duplicate: "equivalent to a kept mutant (same failing tests from the same function)"
    )

    /// Runs the suite twice with the mutants: FAIL_TO_PASS are the baseline's passing tests
    /// that fail in both, PASS_TO_PASS those that pass in both.
    func judge(_ mutations: [Mutation], on worker: SuiteWorker) async throws -> Verdict {
        var runs: [SuiteRunResult] = []
        for _ in 0..<2 {
            let run = try await worker.run(mutations, command: command, timeout: timeout)
            if run.timedOut { return Verdict(dropReason: Self.reasons.timeout) }
            let failing = baseline.passing.filter { run.statuses[$0] != .passed }
            if runs.isEmpty && failing.isEmpty { return Verdict(dropReason: Self.reasons.equivalent) }
            runs.append(run)
        }
        let failToPass = baseline.passing.filter { id in runs.allSatisfy { $0.statuses[id] != .passed } }
        let passToPass = baseline.passing.filter { id in runs.allSatisfy { $0.statuses[id] == .passed } }
        if failToPass.isEmpty { return Verdict(dropReason: Self.reasons.unstable) }
        if passToPass.isEmpty { return Verdict(dropReason: Self.reasons.noPassToPass, failToPass: failToPass, passToPass: []) }
        // The worker's checkout path says nothing to a reader of the issue.
        let output = runs[0].output.replacingOccurrences(of: worker.checkout.path + "/", with: "")
        return Verdict(failToPass: failToPass, passToPass: passToPass, output: output)
    }
}

/// Counts and decisions shared by the workers: what is kept, what is equivalent, when to stop.
actor Tally {
    private let configuration: SynthConfiguration
    private let progress: @Sendable (SynthProgress) -> Void
    private var tried: [String: CandidateRecord] = [:]
    private var order: [String] = []
    private var equivalenceKeys: Set<String> = []
    private var inFlight: Set<String> = []

    init(configuration: SynthConfiguration, previous: [CandidateRecord], progress: @escaping @Sendable (SynthProgress) -> Void) {
        self.configuration = configuration
        self.progress = progress
        for record in previous where tried[record.key] == nil {
            tried[record.key] = record
            order.append(record.key)
            if record.outcome == "kept" { equivalenceKeys.insert(Self.equivalenceKey(record)) }
        }
    }

    private var records: [CandidateRecord] { order.compactMap { tried[$0] } }

    enum Claim { case take, skip, wait, stop }

    /// Whether a worker should try `candidate` now: not tried before and more tasks of its sort
    /// wanted; wait while the ones in flight may be enough; stop when enough are kept or the
    /// budget is spent.
    func claim(_ candidate: [Mutation], pairs: Bool) -> Claim {
        let ofSort = records.filter { ($0.mutations.count > 1) == pairs }
        let kept = ofSort.filter { $0.outcome == "kept" }.count
        let target = pairs ? configuration.pairTarget : configuration.maxTasks - configuration.pairTarget
        let budget = pairs ? configuration.pairTarget * 6 : configuration.candidateBudget
        let key = CandidateRecord.key(candidate)
        if kept >= target || ofSort.count >= budget && tried[key] == nil { return .stop }
        if tried[key] != nil || inFlight.contains(key) { return .skip }
        if kept + inFlight.count >= target || ofSort.count + inFlight.count >= budget { return .wait }
        inFlight.insert(key)
        return .take
    }

    /// A reason to drop a valid candidate equivalent to one kept already, or nil (and it counts as kept).
    func equivalence(_ record: CandidateRecord) -> String? {
        let key = Self.equivalenceKey(record)
        guard equivalenceKeys.insert(key).inserted else { return Validation.reasons.duplicate }
        return nil
    }

    static func equivalenceKey(_ record: CandidateRecord) -> String {
        record.mutations.map { "\($0.file)|\($0.function)" }.sorted().joined(separator: ",") + "|" + (record.failToPass ?? []).sorted().joined(separator: ",")
    }

    func record(_ record: CandidateRecord) {
        inFlight.remove(record.key)
        if tried[record.key] == nil { order.append(record.key) }
        tried[record.key] = record
        let kept = records.filter { $0.outcome == "kept" }.count
        let triedCount = order.count
        progress(SynthProgress(phase: record.mutations.count > 1 ? "two-location" : "single", tried: triedCount, kept: kept,
                               dropped: triedCount - kept, last: record.outcome == "kept" ? "kept \(record.taskID ?? "")" : record.outcome))
    }

    func keptSingles() -> [Mutation] {
        records.filter { $0.outcome == "kept" && $0.mutations.count == 1 }.map { $0.mutations[0] }
    }

    func summary(source: String) -> SynthSummary {
        var summary = SynthSummary(source: source)
        for record in records {
            summary.tried += 1
            if record.outcome == "kept" {
                summary.kept += 1
                if record.mutations.count > 1 { summary.keptTwoLocation += 1 }
                for kind in Set(record.mutations.map(\.kind)) { summary.kinds[kind, default: 0] += 1 }
            } else {
                summary.dropped[record.outcome, default: 0] += 1
            }
        }
        return summary
    }
}

/// Candidates handed out in order to whichever worker asks.
actor CandidateQueue {
    private var remaining: ArraySlice<[Mutation]>
    init(_ candidates: [[Mutation]]) { remaining = candidates[...] }
    func next() -> [Mutation]? { remaining.popFirst() }
}

