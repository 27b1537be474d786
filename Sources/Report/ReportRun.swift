import Foundation
import Logging
import Runs
import WardenCore

/// One run directory as the report reads it: results rows, the report computed from them, and
/// the configuration when there is one. Trajectories are not read here (only the viewer pages
/// read them), so the summary of a large run costs one pass over results.jsonl.
public struct ReportRun: Sendable {
    public var directory: URL
    /// The directory's name, shown as the run's title.
    public var name: String
    public var settings: RunSettings?
    public var results: [AttemptResult]
    public var report: BatchReport

    /// Reads `directory`; a run without config.json is reported over the tasks its rows name.
    public static func load(_ directory: URL, logger: Logger = Logger(label: "warden.report")) throws -> ReportRun {
        let resultsURL = directory.appendingPathComponent("results.jsonl")
        guard FileManager.default.fileExists(atPath: resultsURL.path) else {
            throw WardenError("report.run", "no results.jsonl: is this a run directory of `warden run`?", context: directory.path)
        }
        let results = try readResults(resultsURL, logger: logger)
        var settings: RunSettings?
        let configURL = directory.appendingPathComponent("config.json")
        if let data = FileManager.default.contents(atPath: configURL.path) {
            do { settings = try JSONDecoder().decode(RunSettings.self, from: data) } catch {
                logger.debug("config.json is unreadable; the run is reported without its settings",
                             metadata: ["file": "\(configURL.path)", "cause": "\(error)"])
            }
        }
        let taskIDs = settings?.taskIDs ?? Array(Set(results.map(\.instanceID))).sorted()
        let attempts = settings?.attempts ?? max(1, results.map(\.attempt).max() ?? 1)
        let report = BatchReport(results: results, taskIDs: taskIDs, attemptsPerTask: attempts)
        return ReportRun(directory: directory, name: directory.standardizedFileURL.lastPathComponent, settings: settings,
                         results: results, report: report)
    }

    /// The rows of each task, by attempt number.
    var resultsByTask: [String: [AttemptResult]] {
        Dictionary(grouping: results, by: \.instanceID).mapValues { $0.sorted { $0.attempt < $1.attempt } }
    }
}
