import Foundation
import WardenCore
import Workspace

/// A problem with one row or task that did not stop the others from loading.
public struct LoadProblem: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var instanceID: String?
    public var message: String

    public var description: String {
        var place = file
        if let line { place += ":\(line)" }
        if let instanceID { place += " (\(instanceID))" }
        return "\(place): \(message)"
    }
}

/// A task and the git repository holding its base commit.
public struct SuiteTask: Sendable {
    public var instance: TaskInstance
    /// A git repository (normal or bare) containing `instance.baseCommit`.
    public var repository: URL
    /// Where the task can be loaded from again (recorded in trajectories for replay and fork).
    public var origin: TaskOrigin
    /// The repository is the one the task's image keeps (its `/testbed`), found once the image
    /// is unpacked (`ImageRepository`); `repository` is then only where `--repos` would have held it.
    public var repositoryInImage = false

    public init(instance: TaskInstance, repository: URL, origin: TaskOrigin, repositoryInImage: Bool = false) {
        self.instance = instance
        self.repository = repository
        self.origin = origin
        self.repositoryInImage = repositoryInImage
    }
}

/// Tasks loaded from a suite directory or a SWE-bench file.
public struct TaskSuite: Sendable {
    public var name: String
    public var tasks: [SuiteTask]
    /// Rows and tasks that could not be loaded, each naming its file and line.
    public var problems: [LoadProblem]

    /// Loads `reference`: a suite directory (`Tasks/starter`), one task directory inside a
    /// suite (`Tasks/starter/warden__calcly-1`), or a SWE-bench `.jsonl`/`.json` file whose
    /// repositories are found in `repos` (`DIR/OWNER__NAME` or `DIR/OWNER/NAME`).
    /// Plain-file repositories are committed into `cache` with a fixed author and date.
    /// A SWE-bench row whose repository `repos` lacks takes it from its image when it names one,
    /// or from any row's when `imagesHoldRepositories` (an image template will name them).
    public static func load(_ reference: String, repos: URL? = nil, cache: URL, imagesHoldRepositories: Bool = false) throws -> TaskSuite {
        let url = URL(fileURLWithPath: reference).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw WardenError("tasks.missing", "no suite, task directory or tasks file at \(reference)")
        }
        if !isDirectory.boolValue {
            return try SWEBenchFile.load(url, repos: repos, imagesHoldRepositories: imagesHoldRepositories)
        }
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("task.json").path) {
            var suite = try SuiteDirectory.load(url.deletingLastPathComponent(), only: url.lastPathComponent, cache: cache)
            suite.name = url.lastPathComponent
            return suite
        }
        return try SuiteDirectory.load(url, only: nil, cache: cache)
    }

    /// Loads the one task `origin` names, failing with what is missing when it is gone.
    public static func task(at origin: TaskOrigin, cache: URL) throws -> SuiteTask {
        let (reference, repos, instanceID): (String, String?, String?) = switch origin {
        case let .taskDirectory(path): (path, nil, nil)
        case let .suiteFile(path, instanceID, repos): (path, repos, instanceID)
        case .repository: throw WardenError("tasks.origin", "a repository on disk is not a suite task")
        }
        let suite = try load(reference, repos: repos.map { URL(fileURLWithPath: $0) }, cache: cache)
        let matching = suite.tasks.filter { instanceID == nil || $0.instance.instanceID == instanceID }
        guard let task = matching.first else {
            let why = suite.problems.filter { instanceID == nil || $0.instanceID == instanceID }.map(\.description)
            throw WardenError("tasks.origin", "the task \(instanceID.map { "\($0) " } ?? "")cannot be loaded from \(reference)"
                + (why.isEmpty ? "" : ": " + why.joined(separator: "; ")))
        }
        return task
    }

    /// The tasks whose id matches `pattern` (a regular expression), at most `limit` of them.
    public func filtered(_ pattern: String?, limit: Int? = nil) throws -> TaskSuite {
        var result = self
        if let pattern {
            let regex: Regex<AnyRegexOutput>
            do { regex = try Regex(pattern) } catch {
                throw WardenError("tasks.filter", "not a regular expression: \(pattern)")
            }
            result.tasks = tasks.filter { $0.instance.instanceID.contains(regex) }
        }
        if let limit { result.tasks = Array(result.tasks.prefix(limit)) }
        return result
    }
}

/// Fields every source understands, read from one JSON object.
enum TaskFields {
    /// The fields that map to `TaskInstance` properties; the rest (created_at, version,
    /// environment_setup_commit, anything new) stay in `extra`.
    static let known: Set<String> = [
        "instance_id", "repo", "base_commit", "patch", "test_patch", "problem_statement", "hints_text",
        "FAIL_TO_PASS", "PASS_TO_PASS", "test_cmd", "log_parser", "timeout_s", "setup", "image",
        "environment",
    ]

    /// Builds a task from a row; throws a message naming the bad field.
    static func instance(from row: [String: JSONValue], problemStatement fallback: String? = nil) throws -> TaskInstance {
        func string(_ key: String) throws -> String? {
            switch row[key] {
            case nil, .null?: return nil
            case let .string(value)?: return value
            default: throw TaskFieldError("\(key) must be a string")
            }
        }
        /// SWE-bench stores test lists as JSON-encoded strings or as plain lists.
        func list(_ key: String) throws -> [String] {
            switch row[key] {
            case nil, .null?: return []
            case let .array(items)?: return try strings(items, field: key)
            case let .string(encoded)?:
                guard let data = encoded.data(using: .utf8), let decoded = try? JSONDecoder().decode([String].self, from: data) else {
                    throw TaskFieldError("\(key) is a string but not a JSON-encoded list of strings")
                }
                return decoded
            default: throw TaskFieldError("\(key) must be a list of test ids")
            }
        }
        guard let id = try string("instance_id"), !id.isEmpty else { throw TaskFieldError("instance_id is missing") }
        if let problem = TaskInstance.problem(withID: id) { throw TaskFieldError(problem) }
        guard let problem = try string("problem_statement") ?? fallback else { throw TaskFieldError("problem_statement is missing") }
        var timeout: Double?
        switch row["timeout_s"] {
        case nil, .null?: break
        case let .number(value)? where value > 0: timeout = value
        default: throw TaskFieldError("timeout_s must be a positive number of seconds")
        }
        var setup: [String] = []
        switch row["setup"] {
        case nil, .null?: break
        case let .string(command)?: setup = [command]
        case .array?: setup = try list("setup")
        default: throw TaskFieldError("setup must be a command or a list of commands")
        }
        let parser = try string("log_parser")
        let logParser = try parser.map { name in
            guard let known = LogParser(rawValue: name) else {
                throw TaskFieldError("log_parser \"\(name)\" is unknown; expected one of \(LogParser.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return known
        }
        let image = try string("image")
        let environment = try row["environment"].flatMap(environmentSpec)
        if environment != nil, image != nil {
            throw TaskFieldError("environment is for tasks without an image (the image brings its own environment); drop one of them")
        }
        return TaskInstance(
            instanceID: id, problemStatement: problem, hintsText: try string("hints_text"), repo: try string("repo"),
            baseCommit: try string("base_commit"), goldPatch: try string("patch"), testPatch: try string("test_patch"),
            failToPass: try list("FAIL_TO_PASS"), passToPass: try list("PASS_TO_PASS"), testCommand: try string("test_cmd"),
            logParser: logParser, timeoutSeconds: timeout, setup: setup, image: image,
            environment: environment, extra: row.filter { !known.contains($0.key) })
    }

    /// The items of a list field, which must all be strings.
    static func strings(_ items: [JSONValue], field: String) throws -> [String] {
        try items.map {
            guard case let .string(item) = $0 else { throw TaskFieldError("\(field) must list strings") }
            return item
        }
    }

    /// The `environment` object: `python`, `requirements` (a list of lines or a file's path in
    /// the repository), `editable`, `commands`.
    static func environmentSpec(_ value: JSONValue) throws -> TaskEnvironmentSpec? {
        if case .null = value { return nil }
        guard case let .object(fields) = value else { throw TaskFieldError("environment must be an object") }
        let allowed: Set<String> = ["python", "requirements", "editable", "commands"]
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw TaskFieldError("environment.\(unknown) is unknown; expected \(allowed.sorted().joined(separator: ", "))")
        }
        func strings(_ key: String) throws -> [String] {
            switch fields[key] {
            case nil, .null?: return []
            case let .array(items)?: return try TaskFields.strings(items, field: "environment." + key)
            default: throw TaskFieldError("environment.\(key) must be a list of strings")
            }
        }
        var spec = TaskEnvironmentSpec(commands: try strings("commands"))
        switch fields["python"] {
        case nil, .null?: break
        case let .string(version)? where !version.isEmpty && version.split(separator: ".", omittingEmptySubsequences: false)
            .allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }):
            spec.python = version
        default: throw TaskFieldError("environment.python must be a version such as \"3.11\"")
        }
        switch fields["requirements"] {
        case nil, .null?: break
        case let .string(path)?:
            let parts = path.split(separator: "/")
            guard !path.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."), parts.first != ".git" else {
                throw TaskFieldError("environment.requirements \"\(path)\" must be a relative path inside the repository")
            }
            spec.requirementsFile = path
        case .array?: spec.requirements = try strings("requirements")
        default: throw TaskFieldError("environment.requirements must be a list of requirement lines or a file's path in the repository")
        }
        switch fields["editable"] {
        case nil, .null?: break
        case let .bool(editable)?: spec.editable = editable
        default: throw TaskFieldError("environment.editable must be true or false")
        }
        return spec
    }
}

struct TaskFieldError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A SWE-bench instances file: JSON lines, or one JSON list.
enum SWEBenchFile {
    static func load(_ url: URL, repos: URL?, imagesHoldRepositories: Bool) throws -> TaskSuite {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw WardenError("tasks.read", "cannot read the tasks file: \(error.localizedDescription)", context: url.path)
        }
        var rows: [(line: Int?, value: JSONValue?, error: String?)] = []
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("[") {
            guard case let .array(items)? = try? JSONDecoder().decode(JSONValue.self, from: Data(trimmed.utf8)) else {
                throw WardenError("tasks.invalid", "the file starts with [ but is not a JSON list", context: url.path)
            }
            rows = items.map { (nil, $0, nil) }
        } else {
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let content = line.trimmingCharacters(in: .whitespaces)
                if content.isEmpty { continue }
                if let value = try? JSONDecoder().decode(JSONValue.self, from: Data(content.utf8)) {
                    rows.append((index + 1, value, nil))
                } else {
                    rows.append((index + 1, nil, "not valid JSON"))
                }
            }
        }
        var suite = TaskSuite(name: url.deletingPathExtension().lastPathComponent, tasks: [], problems: [])
        var seen = Set<String>()
        for (position, row) in rows.enumerated() {
            let line = row.line ?? position + 1
            func problem(_ message: String, _ id: String? = nil) {
                suite.problems.append(LoadProblem(file: url.path, line: line, instanceID: id, message: message))
            }
            guard let value = row.value else { problem(row.error ?? "unreadable row"); continue }
            guard case let .object(object) = value else { problem("a row must be a JSON object"); continue }
            let instance: TaskInstance
            do { instance = try TaskFields.instance(from: object) } catch let error as TaskFieldError {
                problem(error.message)
                continue
            }
            guard seen.insert(instance.instanceID).inserted else { problem("duplicate instance_id", instance.instanceID); continue }
            guard instance.baseCommit != nil else { problem("base_commit is missing", instance.instanceID); continue }
            guard let name = instance.repo, name.split(separator: "/").count == 2 else {
                problem("repo must be OWNER/NAME", instance.instanceID)
                continue
            }
            let origin = TaskOrigin.suiteFile(path: url.path, instanceID: instance.instanceID, repos: repos?.path)
            let candidates = repos.map { [$0.appendingPathComponent(name.replacingOccurrences(of: "/", with: "__")), $0.appendingPathComponent(name)] } ?? []
            let found = candidates.first { FileManager.default.fileExists(atPath: $0.path) }
            if found == nil, instance.image != nil || imagesHoldRepositories {
                var task = SuiteTask(instance: instance, repository: candidates.first ?? URL(fileURLWithPath: "/\(name)"), origin: origin)
                task.repositoryInImage = true
                suite.tasks.append(task)
                continue
            }
            guard repos != nil else {
                problem("repository \(name) is needed: pass --repos DIR holding DIR/\(name.replacingOccurrences(of: "/", with: "__")) (a clone or bare mirror)", instance.instanceID)
                continue
            }
            guard let repository = found else {
                problem("repository \(name) not found: looked for \(candidates.map(\.path).joined(separator: " and ")); "
                        + "provide it with `git clone --mirror <url-of-\(name)> \(candidates[0].path)`", instance.instanceID)
                continue
            }
            suite.tasks.append(SuiteTask(instance: instance, repository: repository, origin: origin))
        }
        return suite
    }
}

/// A suite directory: one folder per task with task.json, issue.md, gold.patch, test.patch and
/// repo/ (the repository's plain files at the base commit).
enum SuiteDirectory {
    static func load(_ directory: URL, only: String?, cache: URL) throws -> TaskSuite {
        let entries: [String]
        do { entries = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() } catch {
            throw WardenError("tasks.read", "cannot list the suite: \(error.localizedDescription)", context: directory.path)
        }
        var suite = TaskSuite(name: directory.lastPathComponent, tasks: [], problems: [])
        for entry in entries where only == nil || entry == only {
            let folder = directory.appendingPathComponent(entry)
            let taskFile = folder.appendingPathComponent("task.json")
            guard FileManager.default.fileExists(atPath: taskFile.path) else { continue }
            do {
                suite.tasks.append(try loadTask(folder, cache: cache))
            } catch let error as WardenError {
                suite.problems.append(LoadProblem(file: error.context ?? taskFile.path, line: nil, instanceID: entry, message: error.message))
            }
        }
        return suite
    }

    static func loadTask(_ folder: URL, cache: URL) throws -> SuiteTask {
        let taskFile = folder.appendingPathComponent("task.json")
        func read(_ name: String) -> String? { try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) }
        guard let text = read("task.json"),
              case let .object(row)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
            throw WardenError("tasks.invalid", "task.json is not a JSON object", context: taskFile.path)
        }
        var instance: TaskInstance
        do { instance = try TaskFields.instance(from: row, problemStatement: read("issue.md")) } catch let error as TaskFieldError {
            throw WardenError("tasks.invalid", error.message, context: taskFile.path)
        }
        instance.goldPatch = instance.goldPatch ?? read("gold.patch")
        instance.testPatch = instance.testPatch ?? read("test.patch")
        let files = folder.appendingPathComponent("repo")
        guard FileManager.default.fileExists(atPath: files.path) else {
            throw WardenError("tasks.invalid", "the task has no repo/ folder with its files", context: folder.path)
        }
        // Committed with a fixed author and date: the base commit id is the same on every machine.
        let repository = cache.appendingPathComponent(instance.instanceID)
        if FileManager.default.fileExists(atPath: repository.path) {
            do { try FileManager.default.removeItem(at: repository) } catch {
                throw WardenError("tasks.cache", "cannot replace the cached copy of the task's repository: \(error)", context: repository.path)
            }
        }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        do { try FileManager.default.copyItem(at: files, to: repository) } catch {
            throw WardenError("tasks.invalid", "cannot copy the task's files: \(error.localizedDescription)", context: files.path)
        }
        let commit = try RepositoryBuilder.commitAll(in: repository, message: "\(instance.repo ?? instance.instanceID): base for \(instance.instanceID)")
        if let declared = instance.baseCommit, declared != commit {
            throw WardenError("tasks.invalid", "base_commit \(declared) does not match the commit of repo/ (\(commit))", context: taskFile.path)
        }
        instance.baseCommit = commit
        return SuiteTask(instance: instance, repository: repository, origin: .taskDirectory(path: folder.standardizedFileURL.path))
    }
}
