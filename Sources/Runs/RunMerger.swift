import Foundation
import WardenCore

/// Combines shard run directories into one run.
public enum RunMerger {
    /// Checks that the shards share one configuration (but for the shard), unions their
    /// results (one row per instance and attempt), copies their trajectories, and writes the
    /// merged run's config, results, predictions and report.
    public static func merge(_ runs: [URL], into output: URL) throws -> BatchReport {
        guard !runs.isEmpty else { throw WardenError("merge.input", "give the shard run directories to merge") }
        var settings: RunSettings?
        var rows: [String: AttemptResult] = [:]
        for run in runs {
            let configURL = run.appendingPathComponent("config.json")
            var shard: RunSettings
            do { shard = try JSONDecoder().decode(RunSettings.self, from: Data(contentsOf: configURL)) } catch {
                throw WardenError("merge.input", "not a Warden run directory (no readable config.json: \(error))", context: run.path)
            }
            shard.shard = nil
            if let settings {
                let differences = shard.differences(from: settings)
                guard differences.isEmpty else {
                    throw WardenError("merge.input", "this run's configuration differs from the first one's: \(differences.joined(separator: "; "))", context: run.path)
                }
            } else {
                settings = shard
            }
            for row in try readResults(run.appendingPathComponent("results.jsonl")) { rows[row.key] = row }
            let trajectories = run.appendingPathComponent("trajectories")
            for relative in (FileManager.default.subpaths(atPath: trajectories.path) ?? []) where relative.hasSuffix(".jsonl") {
                let target = output.appendingPathComponent("trajectories").appendingPathComponent(relative)
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
                try FileManager.default.copyItem(at: trajectories.appendingPathComponent(relative), to: target)
            }
        }
        guard let settings else { throw WardenError("merge.input", "nothing to merge") }
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try atomicWrite(encoder.encode(settings), to: output.appendingPathComponent("config.json"))
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var results = Data()
        for key in rows.keys.sorted() {
            guard let row = rows[key] else { continue }
            results += try encoder.encode(row)
            results.append(0x0a)
        }
        try atomicWrite(results, to: output.appendingPathComponent("results.jsonl"))
        return try BatchRunner.writeSummaries(directory: output, taskIDs: settings.taskIDs, attempts: settings.attempts, modelName: settings.model)
    }
}
