/// Whether a patch resolved a task, by SWE-bench 5.x's rules.
public enum ResolutionStatus: String, Sendable, Codable {
    /// Every FAIL_TO_PASS and every PASS_TO_PASS test passes.
    case full = "RESOLVED_FULL"
    /// Some but not all FAIL_TO_PASS tests pass, and every PASS_TO_PASS test passes.
    case partial = "RESOLVED_PARTIAL"
    case no = "RESOLVED_NO"
}

/// Which of a task's tests passed, in SWE-bench's report shape.
public struct TestsStatus: Sendable, Codable, Hashable {
    /// Test ids that passed (`success`) and failed (`failure`), in the task's order.
    public struct Outcome: Sendable, Codable, Hashable {
        public var success: [String]
        public var failure: [String]

        public init(success: [String] = [], failure: [String] = []) {
            self.success = success
            self.failure = failure
        }
    }

    public var failToPass: Outcome
    public var passToPass: Outcome

    public init(failToPass: Outcome = Outcome(), passToPass: Outcome = Outcome()) {
        self.failToPass = failToPass
        self.passToPass = passToPass
    }

    enum CodingKeys: String, CodingKey {
        case failToPass = "FAIL_TO_PASS"
        case passToPass = "PASS_TO_PASS"
    }
}

/// The grade of one evaluation: the resolution and the per-test outcomes it was computed from.
public struct Grade: Sendable, Codable, Hashable {
    public var resolution: ResolutionStatus
    public var testsStatus: TestsStatus
    /// Why the log could not be trusted, when it could not; the resolution is then `RESOLVED_NO`.
    public var error: String?

    public init(resolution: ResolutionStatus, testsStatus: TestsStatus, error: String? = nil) {
        self.resolution = resolution
        self.testsStatus = testsStatus
        self.error = error
    }

    /// Whether the task counts as resolved (`RESOLVED_FULL`).
    public var resolved: Bool { resolution == .full }

    enum CodingKeys: String, CodingKey {
        case resolution
        case testsStatus = "tests_status"
        case error
    }
}

/// Grades a parsed test log against a task's FAIL_TO_PASS and PASS_TO_PASS lists.
///
/// SWE-bench 5.x rules: a test missing from the log fails; `PASSED` and `XFAIL` pass; for
/// PASS_TO_PASS, `SKIPPED` also counts as kept. An id cut inside its parameters (more `[` than
/// `]`, as in 676 SWE-bench Verified ids) that is not in the log matches the log's ids it
/// prefixes when they all agree on pass or fail (SWE-bench's `_resolve_case`; of several failing
/// matches Warden takes the worst status, SWE-bench the first). `RESOLVED_FULL` iff everything passes,
/// `RESOLVED_PARTIAL` iff some but not all FAIL_TO_PASS tests pass and all PASS_TO_PASS tests pass,
/// else `RESOLVED_NO`. Two further rules stop logs that fake their results:
/// - a test reported twice with different statuses (`parsed.conflicting`) fails;
/// - a non-zero `testExitCode` with no `FAILED` or `ERROR` status anywhere in the log is an error:
///   the run failed but the log claims otherwise, so the grade is `RESOLVED_NO` with `error` set.
///   `nil` means the exit code is unknown and the rule does not apply.
public func grade(parsed: ParsedTestLog, failToPass: [String], passToPass: [String], testExitCode: Int32?) -> Grade {
    func passes(_ id: String, skippedCounts: Bool) -> Bool {
        guard let key = resolveTestID(id, in: parsed), !parsed.conflicting.contains(key),
              let status = parsed.statuses[key]
        else { return false }
        switch status {
        case .passed, .xfail: return true
        case .skipped: return skippedCounts
        case .failed, .error, .xpass: return false
        }
    }
    func outcome(_ ids: [String], skippedCounts: Bool) -> TestsStatus.Outcome {
        var result = TestsStatus.Outcome()
        for id in ids {
            if passes(id, skippedCounts: skippedCounts) {
                result.success.append(id)
            } else {
                result.failure.append(id)
            }
        }
        return result
    }

    let status = TestsStatus(
        failToPass: outcome(failToPass, skippedCounts: false),
        passToPass: outcome(passToPass, skippedCounts: true)
    )
    if let code = testExitCode, code != 0, !parsed.hasFailures {
        return Grade(
            resolution: .no,
            testsStatus: status,
            error: "the test command exited with code \(code) but its log reports no FAILED or ERROR test "
                + "(a build or collection failure, a crash, a timeout, or faked results); not graded as resolved"
        )
    }
    let resolution: ResolutionStatus
    if status.passToPass.failure.isEmpty, status.failToPass.failure.isEmpty {
        resolution = .full
    } else if status.passToPass.failure.isEmpty, !status.failToPass.success.isEmpty {
        resolution = .partial
    } else {
        resolution = .no
    }
    return Grade(resolution: resolution, testsStatus: status)
}

/// The key of `parsed` that `id` names: itself, or for an id truncated inside its parameter
/// brackets, the log's ids it prefixes when they agree on pass (`PASSED`/`XFAIL`) versus not.
func resolveTestID(_ id: String, in parsed: ParsedTestLog) -> String? {
    if parsed.statuses[id] != nil { return id }
    guard id.filter({ $0 == "[" }).count > id.filter({ $0 == "]" }).count else { return nil }
    let matches = parsed.statuses.filter { $0.key.hasPrefix(id) }
    guard !matches.isEmpty else { return nil }
    func passing(_ status: TestStatus) -> Bool { status == .passed || status == .xfail }
    let outcomes = Set(matches.values.map(passing))
    guard outcomes.count == 1 else { return nil }
    // Deterministic choice: a conflicting match first, then the worst status, then the smallest id.
    func rank(_ key: String) -> Int {
        (parsed.conflicting.contains(key) ? 100 : 0) + (parsed.statuses[key]?.severity ?? 0)
    }
    let ordered = matches.keys.sorted()
    var best = ordered[0]
    for key in ordered.dropFirst() where rank(key) > rank(best) { best = key }
    return best
}

/// The log's statuses as far as the framework's own machine-readable report confirms them.
///
/// The log is what the code under test can print to; the report is written by the runner to a
/// path outside the checkout. A test the log passes, skips or xfails keeps that status only
/// when the report gives it too; otherwise (a different status, or missing from the report) it
/// counts as `FAILED`. Failures in the log stay failures. Honest runs agree, so grades match
/// SWE-bench's, which reads the log alone.
public func confirm(_ log: ParsedTestLog, by report: ParsedTestLog) -> ParsedTestLog {
    var confirmed = log
    for (id, status) in log.statuses where !status.isFailure {
        let reported = report.conflicting.contains(id) ? nil : report.statuses[id]
        let agrees = switch status {
        case .passed: reported == .passed
        case .xfail: reported == .xfail
        case .skipped: reported == .skipped || reported == .xfail
        case .xpass: reported == .passed || reported == .xpass
        case .failed, .error: true
        }
        if !agrees { confirmed.statuses[id] = .failed }
    }
    return confirmed
}
