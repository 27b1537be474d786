import Agent
import Foundation
import WardenCore

/// What `warden sft` keeps: the rejection-sampling filters, the per-task cap and the format.
public struct SFTOptions: Sendable, Hashable {
    /// Attempts kept per task at most (SWE-smith keeps 3).
    public var perTask: Int
    /// Seeds the choice among a task's surviving attempts.
    public var seed: UInt64
    public var format: SFTFormat
    /// Rows with more estimated tokens are dropped.
    public var maxTokens: Int
    /// Keep attempts that had format errors, their failed turns included as they happened.
    public var keepFormatErrors: Bool
    /// Keep resolved attempts that ended other than by submitting (a limit, an error).
    public var keepLimits: Bool

    public init(perTask: Int = 3, seed: UInt64 = 0, format: SFTFormat = .openai, maxTokens: Int = 32_768,
                keepFormatErrors: Bool = false, keepLimits: Bool = false) {
        self.perTask = perTask
        self.seed = seed
        self.format = format
        self.maxTokens = maxTokens
        self.keepFormatErrors = keepFormatErrors
        self.keepLimits = keepLimits
    }
}

/// Why an attempt did not become a row.
public enum SFTDropReason: String, Sendable, Hashable, CaseIterable, Codable {
    case unresolved
    case limit
    case formatErrors = "format errors"
    case unreadable = "unreadable trajectory"
    case tooLong = "too long"
    case duplicatePatch = "duplicate patch"
    case duplicateActions = "duplicate actions"
    case overCap = "over the cap"
}

/// A problem with the input that was reported and skipped: a file, a line when there is one.
public struct SFTDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var message: String

    public var description: String {
        line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)"
    }
}

/// Kept and dropped attempts of one task, or of all of them.
public struct SFTCounts: Sendable, Hashable {
    public var kept = 0
    public var dropped: [SFTDropReason: Int] = [:]

    public var attempts: Int { kept + dropped.values.reduce(0, +) }

    mutating func add(_ other: SFTCounts) {
        kept += other.kept
        for (reason, count) in other.dropped { dropped[reason, default: 0] += count }
    }
}

/// One attempt chosen for the SFT file.
public struct SFTSelection: Sendable, Hashable {
    /// The run directory and its name (the `run` field of the row).
    public var runDirectory: URL
    public var run: String
    public var result: AttemptResult
    public var trajectory: URL
    public var estimatedTokens: Int
}

/// What the rejection sampling decided, per task and in total.
public struct SFTReport: Sendable {
    public var options: SFTOptions
    /// The chosen attempts, ordered by instance id, then run name, then attempt.
    public var selected: [SFTSelection]
    public var tasks: [String: SFTCounts]
    public var diagnostics: [SFTDiagnostic]

    public var totals: SFTCounts {
        tasks.values.reduce(into: SFTCounts()) { $0.add($1) }
    }

    public var estimatedTokens: Int { selected.reduce(0) { $0 + $1.estimatedTokens } }

    /// The statistics for people: per task, then the totals, then the note on token counts.
    public var summary: String {
        func describe(_ counts: SFTCounts) -> String {
            let reasons = SFTDropReason.allCases.compactMap { reason in
                counts.dropped[reason].map { "\(reason.rawValue) \($0)" }
            }
            return "kept \(counts.kept) of \(counts.attempts)" + (reasons.isEmpty ? "" : "; dropped: " + reasons.joined(separator: ", "))
        }
        var lines = tasks.keys.sorted().compactMap { id in tasks[id].map { "\(id): \(describe($0))" } }
        let totals = totals
        lines.append("total over \(tasks.count) task(s), \(Set(selected.map(\.result.instanceID)).count) with rows: \(describe(totals))")
        lines.append("rows: \(selected.count), \(estimatedTokens) estimated tokens (format \(options.format.rawValue), at most \(options.perTask) per task, seed \(options.seed), max \(options.maxTokens) tokens)")
        lines.append("token counts are estimates, ceil(UTF-8 bytes / 4) of the messages' contents, reasoning and tool calls: no tokenizer was used")
        if !diagnostics.isEmpty { lines.append("\(diagnostics.count) input problem(s) reported and skipped") }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Rejection sampling of finished runs into an SFT file: keep resolved attempts that
/// submitted cleanly, drop duplicates, cap each task reproducibly, render, write atomically.
public enum SFTExport {
    /// Decides which attempts become rows, without writing anything.
    ///
    /// Filters, in order: unresolved, limit, format errors, unreadable trajectory, too long,
    /// duplicate patch, duplicate actions, over the cap. Duplicates keep the first attempt in
    /// (run name, run path, attempt) order; the cap keeps a seeded random choice per task. The
    /// order the run directories are given in changes nothing.
    public static func plan(runs: [URL], options: SFTOptions) throws -> SFTReport {
        guard options.perTask >= 1 else { throw WardenError("sft.options", "the per-task cap must be at least 1") }
        guard options.maxTokens >= 1 else { throw WardenError("sft.options", "the token limit must be at least 1") }
        guard !runs.isEmpty else { throw WardenError("sft.options", "give at least one run directory") }

        var diagnostics: [SFTDiagnostic] = []
        var candidates: [Candidate] = []
        var seenDirectories = Set<String>()
        for directory in runs.map(\.standardizedFileURL) where seenDirectories.insert(directory.path).inserted {
            let results = directory.appendingPathComponent("results.jsonl")
            guard FileManager.default.fileExists(atPath: results.path) else {
                throw WardenError("sft.results", "no results.jsonl: is this a run directory?", context: directory.path)
            }
            let read = try readResultRows(results)
            diagnostics += read.problems
            candidates += read.rows.map { Candidate(directory: directory, result: $0.row, line: $0.line) }
        }
        candidates.sort(by: Candidate.canonicalOrder)

        var tasks: [String: SFTCounts] = [:]
        var survivors: [String: [Survivor]] = [:]
        for candidate in candidates {
            let id = candidate.result.instanceID
            var counts = tasks[id] ?? SFTCounts()
            defer { tasks[id] = counts }
            let decision = screen(candidate, options: options)
            switch decision {
            case let .drop(reason, problem):
                counts.dropped[reason, default: 0] += 1
                if let problem { diagnostics.append(problem) }
            case let .keep(survivor):
                survivors[id, default: []].append(survivor)
            }
        }

        var selected: [SFTSelection] = []
        for id in survivors.keys.sorted() {
            guard let group = survivors[id] else { continue }
            var counts = tasks[id] ?? SFTCounts()
            var patches = Set<String>()
            var actionSequences = Set<String>()
            var unique: [Survivor] = []
            for survivor in group {
                if !patches.insert(survivor.patchKey).inserted {
                    counts.dropped[.duplicatePatch, default: 0] += 1
                } else if !actionSequences.insert(survivor.actionKey).inserted {
                    counts.dropped[.duplicateActions, default: 0] += 1
                } else {
                    unique.append(survivor)
                }
            }
            var generator = SFTSampling.generator(seed: options.seed, instanceID: id)
            let chosen = SFTSampling.shuffle(unique, generator: &generator).prefix(options.perTask)
            counts.dropped[.overCap, default: 0] += unique.count - chosen.count
            if counts.dropped[.overCap] == 0 { counts.dropped[.overCap] = nil }
            counts.kept = chosen.count
            tasks[id] = counts
            selected += chosen.sorted { Candidate.canonicalOrder($0.candidate, $1.candidate) }.map(\.selection)
        }
        return SFTReport(options: options, selected: selected, tasks: tasks, diagnostics: diagnostics)
    }

    /// Plans, renders the chosen attempts and writes them to `output` atomically (a temporary
    /// file in the same directory, renamed over `output` only when complete).
    @discardableResult
    public static func export(runs: [URL], options: SFTOptions, output: URL) throws -> SFTReport {
        let report = try plan(runs: runs, options: options)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(to: output) { append in
            for selection in report.selected {
                let trajectory = try Trajectory.read(selection.trajectory)
                let row = SFTRenderer.row(trajectory, result: selection.result, run: selection.run, format: options.format)
                var line = try encoder.encode(row)
                line.append(0x0a)
                try append(line)
            }
        }
        return report
    }

    /// The rows of `results.jsonl` with their line numbers, the last per (instance, attempt)
    /// winning, and every line that could not be read as a problem naming the file and line.
    public static func readResultRows(_ url: URL) throws -> (rows: [(row: AttemptResult, line: Int)], problems: [SFTDiagnostic]) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WardenError("sft.results", "cannot read the results: \(error.localizedDescription)", context: url.path)
        }
        let decoder = JSONDecoder()
        var byKey: [String: (row: AttemptResult, line: Int)] = [:]
        var order: [String] = []
        var problems: [SFTDiagnostic] = []
        let lines = data.split(separator: 0x0a, omittingEmptySubsequences: false)
        for (offset, line) in lines.enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }) { continue }
            do {
                let row = try decoder.decode(AttemptResult.self, from: Data(line))
                if byKey[row.key] == nil { order.append(row.key) }
                byKey[row.key] = (row, offset + 1)
            } catch {
                let last = offset == lines.count - 1
                problems.append(SFTDiagnostic(file: url.path, line: offset + 1, message: "not a results row (\(describe(error)))"
                    + (last ? "; the line has no newline and may have been cut short by a kill" : "") + "; skipped"))
            }
        }
        return (order.compactMap { byKey[$0] }, problems)
    }

    // MARK: - Screening one attempt

    struct Candidate {
        var directory: URL
        var result: AttemptResult
        var line: Int

        var run: String { directory.lastPathComponent }

        static func canonicalOrder(_ a: Candidate, _ b: Candidate) -> Bool {
            (a.result.instanceID, a.run, a.directory.path, a.result.attempt) < (b.result.instanceID, b.run, b.directory.path, b.result.attempt)
        }

        /// The trajectory's file: as the row names it, else where `warden run` writes it.
        var trajectoryURL: URL {
            let relative = result.trajectory.isEmpty ? "trajectories/\(result.instanceID)/\(result.attempt).jsonl" : result.trajectory
            return relative.hasPrefix("/") ? URL(fileURLWithPath: relative) : directory.appendingPathComponent(relative)
        }
    }

    struct Survivor {
        var candidate: Candidate
        var patchKey: String
        var actionKey: String
        var estimatedTokens: Int

        var selection: SFTSelection {
            SFTSelection(runDirectory: candidate.directory, run: candidate.run, result: candidate.result,
                         trajectory: candidate.trajectoryURL, estimatedTokens: estimatedTokens)
        }
    }

    enum Decision {
        case keep(Survivor)
        case drop(SFTDropReason, SFTDiagnostic?)
    }

    static func screen(_ candidate: Candidate, options: SFTOptions) -> Decision {
        let result = candidate.result
        if !result.resolved { return .drop(.unresolved, nil) }
        if result.exitStatus != .submitted && !options.keepLimits { return .drop(.limit, nil) }
        if result.formatErrors > 0 && !options.keepFormatErrors { return .drop(.formatErrors, nil) }

        let url = candidate.trajectoryURL
        let origin = "results line \(candidate.line): \(result.instanceID) attempt \(result.attempt)"
        func unreadable(_ message: String, line: Int? = nil) -> Decision {
            .drop(.unreadable, SFTDiagnostic(file: url.path, line: line, message: "\(message) (\(origin)); skipped"))
        }
        guard FileManager.default.fileExists(atPath: url.path) else { return unreadable("the trajectory file is missing") }
        let trajectory: Trajectory
        do { trajectory = try Trajectory.read(url) } catch { return unreadable(describe(error)) }
        if let line = trajectory.damagedLines.first {
            return unreadable("\(trajectory.damagedLines.count) damaged line(s), a conversation with gaps", line: line)
        }
        if trajectory.header.task.instanceID != result.instanceID {
            return unreadable("the trajectory is of \(trajectory.header.task.instanceID), not \(result.instanceID)", line: 1)
        }

        let row = SFTRenderer.row(trajectory, result: result, run: candidate.run, format: options.format)
        if row.estimatedTokens > options.maxTokens { return .drop(.tooLong, nil) }

        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let actions = trajectory.steps.compactMap(\.action)
        let actionKey = (try? encoder.encode(actions)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return .keep(Survivor(candidate: candidate, patchKey: SFTSampling.normalizedPatch(result.patch), actionKey: actionKey,
                              estimatedTokens: row.estimatedTokens))
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case let error as WardenError: return error.message
        case let DecodingError.keyNotFound(key, _): return "the field \"\(key.stringValue)\" is missing"
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "the field \"\(path)\" has the wrong type"
        case let DecodingError.dataCorrupted(context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not valid JSON" : "the field \"\(path)\" is invalid"
        default: return "\(error)"
        }
    }
}
