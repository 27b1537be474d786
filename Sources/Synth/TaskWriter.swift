import Foundation
import Logging
import Runs
import Scoring
import WardenCore
import Workspace

/// Writes the issue text of a synthesized task: from the template by default, or by a model
/// given the prompt template filled in.
public struct IssueWriter: Sendable {
    /// Asks the model with the prompt; nil writes from the template.
    let complete: (@Sendable (String) async throws -> String)?
    let promptTemplate: String?

    public static let template = IssueWriter(complete: nil, promptTemplate: nil)

    /// A model writes the issue: `complete` sends it the prompt made from `promptTemplate`
    /// (the bundled `issue_prompt.md` when nil) and returns its reply.
    public static func model(promptTemplate: String? = nil, _ complete: @escaping @Sendable (String) async throws -> String) -> IssueWriter {
        IssueWriter(complete: complete, promptTemplate: promptTemplate)
    }

    static func resource(_ name: String) throws -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: "md", subdirectory: "Resources") else {
            throw WardenError("synth.resource", "\(name).md is missing from the Synth bundle")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The facts an issue is written from; none of them names the mutated line.
    struct Facts {
        var repository: String
        var failing: [String]
        var command: String
        var output: String
        var passingCount: Int
        var variant: UInt64
    }

    func write(_ facts: Facts) async throws -> String {
        let list = facts.failing.prefix(12).map { "- `\($0)`" }.joined(separator: "\n")
            + (facts.failing.count > 12 ? "\n- and \(facts.failing.count - 12) more" : "")
        let values = [
            "repository": facts.repository, "failing_tests": list, "command": facts.command,
            "output": facts.output.isEmpty ? "(the runner printed nothing more about it)" : facts.output,
            "count": String(facts.failing.count), "passing_count": String(facts.passingCount),
            "title": Self.title(facts), "first_test": Self.shortName(facts.failing.first ?? ""),
        ]
        if let complete {
            let prompt = Self.fill(try promptTemplate ?? Self.resource("issue_prompt"), values)
            let reply = try await complete(prompt).trimmingCharacters(in: .whitespacesAndNewlines)
            if !reply.isEmpty { return reply + "\n" }
            Logger(label: "warden.synth").warning("the model wrote an empty issue; the template's text is used instead")
        }
        return Self.fill(try Self.resource("issue_template"), values)
    }

    static func fill(_ template: String, _ values: [String: String]) -> String {
        var text = template
        for (key, value) in values { text = text.replacingOccurrences(of: "{\(key)}", with: value) }
        return text
    }

    /// `tests/test_x.py::test_parses_keys` -> `test_parses_keys`.
    static func shortName(_ id: String) -> String {
        String(id.split(separator: ":").last ?? Substring(id)).trimmingCharacters(in: .whitespaces)
    }

    static func title(_ facts: Facts) -> String {
        let name = shortName(facts.failing.first ?? "a test")
        let titles = facts.failing.count == 1
            ? ["`\(name)` fails", "Regression: `\(name)` no longer passes", "Unexpected result in `\(name)`"]
            : ["`\(name)` and \(facts.failing.count - 1) other test\(facts.failing.count == 2 ? "" : "s") fail",
               "Regression: \(facts.failing.count) tests fail, starting with `\(name)`",
               "Wrong results: \(facts.failing.count) tests broke"]
        return titles[Int(facts.variant % UInt64(titles.count))]
    }
}

/// Writes one synthesized task as a suite task folder, whole or not at all: built in a
/// temporary folder inside the output, then renamed into place.
struct TaskWriter: Sendable {
    var source: SynthSource
    var output: URL
    var baseline: Baseline
    var keepTests: Bool
    var issueWriter: IssueWriter
    var seed: UInt64

    /// The id of a task: the repository's name and a hash of its mutations, so two tasks never
    /// share a folder (and a rerun makes the same id for the same mutants).
    static func taskID(repository: String, mutations: [Mutation]) -> String {
        let slug = repository.replacingOccurrences(of: "/", with: "__").filter { $0.isLetter || $0.isNumber || "_-.".contains($0) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in CandidateRecord.key(mutations).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return "\(slug)-synth-\(String(hash, radix: 16).leftPadded(to: 16))"
    }

    /// The test files the failing tests live in: hidden from the agent unless `keepTests`.
    func hiddenFiles(_ failToPass: [String]) -> [String] {
        guard !keepTests else { return [] }
        let testFiles = Set(source.testFiles)
        return Set(failToPass.compactMap { baseline.file(of: $0) }).filter(testFiles.contains).sorted()
    }

    func write(_ record: CandidateRecord, output testOutput: String) async throws -> String {
        let mutations = record.mutations
        let id = Self.taskID(repository: source.name, mutations: mutations)
        let failToPass = record.failToPass ?? [], passToPass = record.passToPass ?? []
        let hidden = hiddenFiles(failToPass)
        let temporary = output.appendingPathComponent(".synth/partial-\(id)-\(UUID().uuidString.prefix(8))")
        defer {
            // Gone once renamed into place; otherwise the next run removes it too.
            do { try FileManager.default.removeItem(at: temporary, ifPresent: true) } catch {
                Logger(label: "warden.synth").debug("cannot remove the unfinished task folder \(temporary.path): \(error)")
            }
        }
        let repo = temporary.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)

        let mutated = try Mutation.mutatedFiles(mutations) { try Data(contentsOf: source.checkout.appendingPathComponent($0)) }
        for file in source.files where !hidden.contains(file) {
            let destination = repo.appendingPathComponent(file)
            try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            if let data = mutated[file] {
                try data.write(to: destination)
            } else {
                try FileManager.default.copyItem(at: source.checkout.appendingPathComponent(file), to: destination)
            }
        }
        var gold = ""
        for file in mutated.keys.sorted() {
            gold += try TextDiff.patch(path: file, old: mutated[file], new: try Data(contentsOf: source.checkout.appendingPathComponent(file)))
        }
        var tests = ""
        for file in hidden {
            tests += try TextDiff.patch(path: file, old: nil, new: try Data(contentsOf: source.checkout.appendingPathComponent(file)))
        }

        let failingFiles = Set(failToPass.compactMap { baseline.file(of: $0) }).sorted()
        let reproduce = failingFiles.isEmpty || !source.testCommand.contains("{test_files}") ? source.command() : source.command(testFiles: failingFiles)
        let facts = IssueWriter.Facts(
            repository: source.name, failing: failToPass, command: reproduce,
            output: Self.excerpt(testOutput, failing: failToPass, mutations: mutations, mutated: mutated),
            passingCount: passToPass.count, variant: id.utf8.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) } ^ seed)
        let issue = try await issueWriter.write(facts)

        let kinds = mutations.map(\.kind)
        let row: [String: JSONValue] = [
            "instance_id": .string(id), "repo": .string(source.name), "problem_statement": .string(issue), "hints_text": .string(""),
            "FAIL_TO_PASS": .array(failToPass.map { .string($0) }), "PASS_TO_PASS": .array(passToPass.map { .string($0) }),
            "test_cmd": .string(source.command()), "log_parser": .string(source.logParser.rawValue), "timeout_s": .number(300),
            "mutation_kind": .string(kinds.joined(separator: "+")),
            "synth": .object([
                "mutations": .array(mutations.map { mutation in
                    .object(["file": .string(mutation.file), "line": .number(Double(mutation.line)), "kind": .string(mutation.kind),
                             "function": .string(mutation.function)])
                }),
                "locations": .number(Double(mutations.count)), "hidden_test_files": .array(hidden.map { .string($0) }),
                "source_commit": .string(source.commit), "seed": .number(Double(seed)),
            ]),
        ]
        try atomicWrite(try Synthesizer.encoder.encode(JSONValue.object(row)), to: temporary.appendingPathComponent("task.json"))
        try atomicWrite(Data(issue.utf8), to: temporary.appendingPathComponent("issue.md"))
        try atomicWrite(Data(gold.utf8), to: temporary.appendingPathComponent("gold.patch"))
        try atomicWrite(Data(tests.utf8), to: temporary.appendingPathComponent("test.patch"))

        let destination = output.appendingPathComponent(id)
        // A folder left by a run killed after the rename but before its log row: the same task again.
        try FileManager.default.removeItem(at: destination, ifPresent: true)
        guard rename(temporary.path, destination.path) == 0 else {
            throw WardenError("synth.write", "cannot move the finished task into place: \(String(cString: strerror(errno)))", context: destination.path)
        }
        return id
    }

    /// The runner's lines about the failing tests, without stack frames or anything naming a
    /// mutated file or line, at most 40 lines.
    static func excerpt(_ output: String, failing: [String], mutations: [Mutation], mutated: [String: Data]) -> String {
        let names = Set(failing.map { IssueWriter.shortName($0) })
        let forbidden = Set(mutations.flatMap { mutation -> [String] in
            var words = [mutation.file]
            if let data = mutated[mutation.file] {
                let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                if mutation.line - 1 < lines.count {
                    let text = lines[mutation.line - 1].trimmingCharacters(in: .whitespaces)
                    if text.count >= 8 { words.append(text) }
                }
            }
            return words
        })
        var lines: [String] = []
        var following = 0
        for line in output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if names.contains(where: { !$0.isEmpty && line.contains($0) }) {
                following = 8
            } else if following > 0 {
                following -= 1
            } else {
                continue
            }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            let noise = ["at ", "File \"", "duration_ms:", "stack:", "failureType:"]
            if trimmed.isEmpty || noise.contains(where: trimmed.hasPrefix) { continue }
            if forbidden.contains(where: { line.contains($0) }) { continue }
            lines.append(line)
            if lines.count >= 40 { break }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
