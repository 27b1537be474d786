/// The outcome of one test as a log reports it.
///
/// Raw values are SWE-bench's status names, so parsed logs can be written next to its reports.
public enum TestStatus: String, Sendable, Codable, CaseIterable {
    case passed = "PASSED"
    case failed = "FAILED"
    case error = "ERROR"
    case skipped = "SKIPPED"
    /// An expected failure that failed (pytest `XFAIL`, unittest `expected failure`, TAP `not ok # TODO`).
    case xfail = "XFAIL"
    /// An expected failure that passed (pytest `XPASS`, unittest `unexpected success`, TAP `ok # TODO`).
    case xpass = "XPASS"

    /// How bad the status is when one test is reported twice: the worse report wins.
    ///
    /// Failures rank above everything so that a patch printing fake `PASSED` lines next to the real
    /// failure cannot turn it into a pass.
    var severity: Int {
        switch self {
        case .passed: 0
        case .xfail: 1
        case .skipped: 2
        case .xpass: 3
        case .failed: 4
        case .error: 5
        }
    }

    /// Whether the status is a failure of the test run (`FAILED` or `ERROR`).
    public var isFailure: Bool { self == .failed || self == .error }
}

/// The statuses a test log reports, by test id.
public struct ParsedTestLog: Sendable, Hashable {
    /// The status of each test id; for an id reported more than once, the worst status.
    public var statuses: [String: TestStatus]
    /// Ids reported more than once with different statuses. A real run reports each test once;
    /// a second, different report usually means something printed fake result lines.
    public var conflicting: Set<String>

    public init(statuses: [String: TestStatus] = [:], conflicting: Set<String> = []) {
        self.statuses = statuses
        self.conflicting = conflicting
    }

    /// Records one report of `id`; a different earlier report makes the id conflicting, and the
    /// worse of the two is kept.
    public mutating func record(_ id: String, _ status: TestStatus) {
        guard let previous = statuses[id] else {
            statuses[id] = status
            return
        }
        guard previous != status else { return }
        conflicting.insert(id)
        if status.severity > previous.severity {
            statuses[id] = status
        }
    }

    /// Whether any test is reported `FAILED` or `ERROR`.
    public var hasFailures: Bool { statuses.values.contains { $0.isFailure } }
}
