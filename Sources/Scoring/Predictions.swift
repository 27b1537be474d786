import Foundation
import WardenCore

/// Model patches keyed by instance id, read from SWE-bench's prediction formats: JSON lines
/// of `{instance_id, model_name_or_path, model_patch}`, a JSON list of those, or a JSON object
/// keyed by instance id.
public struct Predictions: Sendable {
    public var patches: [String: String]
    public var modelName: String?
    /// Rows that could not be read, as `file:line: problem`; the others still count.
    public var problems: [String]

    public static func load(_ url: URL) throws -> Predictions {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw WardenError("predictions.read", "cannot read the predictions: \(error.localizedDescription)", context: url.path)
        }
        var result = Predictions(patches: [:], modelName: nil, problems: [])
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        func take(_ value: JSONValue, key: String?, place: String) {
            guard case let .object(row) = value else { result.problems.append("\(place): not a JSON object"); return }
            var id = key
            if case let .string(value)? = row["instance_id"] { id = value }
            guard let id, !id.isEmpty else { result.problems.append("\(place): no instance_id"); return }
            switch row["model_patch"] {
            case let .string(patch)?: result.patches[id] = patch
            case .null?, nil: result.patches[id] = ""
            default: result.problems.append("\(place): model_patch must be a string"); return
            }
            if case let .string(name)? = row["model_name_or_path"] { result.modelName = result.modelName ?? name }
        }
        if trimmed.hasPrefix("[") || trimmed.hasPrefix("{") && !trimmed.contains("\n{") {
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(trimmed.utf8)) else {
                throw WardenError("predictions.invalid", "not valid JSON", context: url.path)
            }
            switch value {
            case let .array(items): for (index, item) in items.enumerated() { take(item, key: nil, place: "\(url.path): item \(index + 1)") }
            case let .object(object) where object["instance_id"] != nil: take(value, key: nil, place: url.path)
            case let .object(object): for (key, item) in object.sorted(by: { $0.key < $1.key }) { take(item, key: key, place: "\(url.path): \(key)") }
            default: throw WardenError("predictions.invalid", "expected a list or an object", context: url.path)
            }
            return result
        }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = line.trimmingCharacters(in: .whitespaces)
            guard !content.isEmpty else { continue }
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(content.utf8)) else {
                result.problems.append("\(url.path):\(index + 1): not valid JSON")
                continue
            }
            take(value, key: nil, place: "\(url.path):\(index + 1)")
        }
        return result
    }
}

/// SWE-bench's run report: counts and id lists.
public struct RunReport: Sendable, Codable {
    public var totalInstances = 0
    public var submittedInstances = 0
    public var completedInstances = 0
    public var resolvedInstances = 0
    public var unresolvedInstances = 0
    public var emptyPatchInstances = 0
    public var errorInstances = 0
    public var submittedIds: [String] = []
    public var completedIds: [String] = []
    public var resolvedIds: [String] = []
    public var unresolvedIds: [String] = []
    public var emptyPatchIds: [String] = []
    public var errorIds: [String] = []
    public var schemaVersion = 2

    public init() {}

    enum CodingKeys: String, CodingKey {
        case totalInstances = "total_instances", submittedInstances = "submitted_instances"
        case completedInstances = "completed_instances", resolvedInstances = "resolved_instances"
        case unresolvedInstances = "unresolved_instances", emptyPatchInstances = "empty_patch_instances"
        case errorInstances = "error_instances", submittedIds = "submitted_ids", completedIds = "completed_ids"
        case resolvedIds = "resolved_ids", unresolvedIds = "unresolved_ids", emptyPatchIds = "empty_patch_ids"
        case errorIds = "error_ids", schemaVersion = "schema_version"
    }

    /// Adds one instance's outcome: nil result means the harness could not evaluate it.
    public mutating func record(_ id: String, submitted: Bool, emptyPatch: Bool, result: EvaluationResult?) {
        guard submitted else { return }
        submittedIds.append(id)
        if emptyPatch {
            emptyPatchIds.append(id)
        } else if let result {
            completedIds.append(id)
            if result.resolved { resolvedIds.append(id) } else { unresolvedIds.append(id) }
        } else {
            errorIds.append(id)
        }
        for keyPath in [\RunReport.submittedIds, \.emptyPatchIds, \.completedIds, \.resolvedIds, \.unresolvedIds, \.errorIds] {
            self[keyPath: keyPath].sort()
        }
        submittedInstances = submittedIds.count
        completedInstances = completedIds.count
        resolvedInstances = resolvedIds.count
        unresolvedInstances = unresolvedIds.count
        emptyPatchInstances = emptyPatchIds.count
        errorInstances = errorIds.count
    }
}
