import Foundation
import Logging
import Runs
import WardenCore

/// What `warden report` wrote.
public struct ReportOutput: Sendable {
    /// The summary page, and its size: the bytes a browser loads first.
    public var page: URL
    public var pageBytes: Int
    /// Pages of the task table (1 when it fits the first page).
    public var tablePages: Int
    /// The folder of per-attempt viewer pages, and how many were written.
    public var attemptsDirectory: URL
    public var attemptPages: Int
    /// Attempts whose trajectory could not be read; their pages say why.
    public var unreadableTrajectories: Int
}

/// Writes the HTML report of one or more run directories: `out` (the summary, self-contained)
/// and beside it `<name>-attempts/`, one viewer page per attempt, so a run of 10,000 attempts
/// loads one small page first and each trajectory only when it is opened.
public struct ReportWriter: Sendable {
    public var runs: [URL]
    public var out: URL
    /// Whether to write the viewer pages (reading every trajectory); off, the summary only.
    public var attemptPages: Bool
    public var logger: Logger

    public init(runs: [URL], out: URL, attemptPages: Bool = true, logger: Logger = Logger(label: "warden.report")) {
        self.runs = runs
        self.out = out
        self.attemptPages = attemptPages
        self.logger = logger
    }

    /// The folder of viewer pages for `out`: `report.html` -> `report-attempts`.
    public static func attemptsDirectory(for out: URL) -> URL {
        out.deletingLastPathComponent().appendingPathComponent(out.deletingPathExtension().lastPathComponent + "-attempts")
    }

    public func write() async throws -> ReportOutput {
        guard !runs.isEmpty else { throw WardenError("report.runs", "no run directory given") }
        let loaded = try runs.map { try ReportRun.load($0, logger: logger) }
        let attempts = Self.attemptsDirectory(for: out)
        let folder = attempts.lastPathComponent
        let base = out.deletingPathExtension().lastPathComponent
        func tablePage(_ number: Int) -> String { number == 1 ? out.lastPathComponent : "\(base)-tasks-\(number).html" }
        let summary = SummaryPage(runs: loaded, attemptLink: { run, row in
            attemptPages ? Self.percentEncoded(folder) + "/run\(run)/" + Self.percentEncoded(Self.pageName(row)) : nil
        }, pageName: { Self.percentEncoded(tablePage($0)) })
        let pages = summary.render()
        let html = Data(pages[0].utf8)
        try atomicWrite(html, to: out)
        for (index, page) in pages.enumerated().dropFirst() {
            try atomicWrite(Data(page.utf8), to: out.deletingLastPathComponent().appendingPathComponent(tablePage(index + 1)))
        }
        var written = 0, unreadable = 0
        if attemptPages {
            (written, unreadable) = try await writeAttemptPages(loaded, into: attempts)
        }
        return ReportOutput(page: out, pageBytes: html.count, tablePages: pages.count, attemptsDirectory: attempts, attemptPages: written,
                            unreadableTrajectories: unreadable)
    }

    /// One page per attempt, rendered on every core; a trajectory that cannot be read gets a
    /// page saying why, and the report goes on.
    func writeAttemptPages(_ runs: [ReportRun], into directory: URL) async throws -> (written: Int, unreadable: Int) {
        let jobs = runs.enumerated().flatMap { index, run in run.results.map { (index, run.directory, $0) } }
        for index in runs.indices {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("run\(index)"), withIntermediateDirectories: true)
        }
        let back = "../../" + Self.percentEncoded(out.lastPathComponent)
        let logger = self.logger
        return try await withThrowingTaskGroup(of: Bool.self, returning: (written: Int, unreadable: Int).self) { group in
            var next = jobs.makeIterator()
            func start() -> Bool {
                guard let job = next.next() else { return false }
                let (run, runDirectory, row) = job
                group.addTask {
                    let target = directory.appendingPathComponent("run\(run)").appendingPathComponent(Self.pageName(row))
                    let (html, readable) = Self.attemptPage(row, runDirectory: runDirectory, backLink: back, logger: logger)
                    try Data(html.utf8).write(to: target)
                    return readable
                }
                return true
            }
            for _ in 0..<max(2, ProcessInfo.processInfo.activeProcessorCount * 2) where start() {}
            var written = 0, unreadable = 0
            while let readable = try await group.next() {
                written += 1
                if !readable { unreadable += 1 }
                _ = start()
            }
            return (written, unreadable)
        }
    }

    static func attemptPage(_ row: AttemptResult, runDirectory: URL, backLink: String, logger: Logger) -> (String, Bool) {
        let components = row.trajectory.split(separator: "/")
        guard !row.trajectory.hasPrefix("/"), !components.contains("..") else {
            return (problemPage(row, "the row's trajectory path \(row.trajectory) leaves the run directory", backLink: backLink), false)
        }
        do {
            let trajectory = try ViewedTrajectory.read(runDirectory.appendingPathComponent(row.trajectory))
            return (TrajectoryPage(trajectory: trajectory, result: row, backLink: backLink).render(), true)
        } catch {
            logger.warning("cannot read a trajectory; its page says why",
                           metadata: ["task": "\(row.instanceID)", "attempt": "\(row.attempt)", "cause": "\(error)"])
            return (problemPage(row, "\(error)", backLink: backLink), false)
        }
    }

    static func problemPage(_ row: AttemptResult, _ problem: String, backLink: String) -> String {
        HTML.page(title: "\(row.instanceID) · Warden trajectory", body: "<p><a href=\"\(HTML.attribute(backLink))\">← report</a></p>"
            + "<h1>\(HTML.text(row.instanceID)) <span class=\"muted\">attempt \(row.attempt)</span></h1>"
            + "<p class=\"bad\">\(HTML.text(problem))</p><h2>Patch</h2>" + TrajectoryPage.diff(row.patch))
    }

    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    /// The file name of an attempt's page: the id percent-encoded, so it holds no `/`; a long
    /// one is cut and made unique again by a hash of the whole id (a name has at most 255 bytes).
    static func pageName(_ row: AttemptResult) -> String {
        let encoded = percentEncoded(row.instanceID)
        guard encoded.utf8.count > 160 else { return "\(row.attempt)-\(encoded).html" }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in row.instanceID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return "\(row.attempt)-\(percentEncoded(String(row.instanceID.prefix(40))))-\(String(hash, radix: 16)).html"
    }

    /// A file name as a relative URL path segment: everything but unreserved characters encoded,
    /// so a name can never become a scheme (`javascript:`), a query or another folder.
    static func percentEncoded(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "_"
    }
}

/// The viewer page of one trajectory file (`warden show --html`).
public func trajectoryHTML(_ url: URL) throws -> String {
    TrajectoryPage(trajectory: try ViewedTrajectory.read(url), result: nil, backLink: nil).render()
}
