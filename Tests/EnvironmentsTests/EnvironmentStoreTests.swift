import Agent
import Environments
import Foundation
import Sandbox
import Scoring
import Synchronization
import Tasks
import Testing
import WardenCore
import Workspace

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func profile(_ name: String) throws -> SandboxProfile {
    try SandboxProfile.load(repositoryRoot.appendingPathComponent("Sandboxes/\(name).json").path)
}

/// A scratch directory (0700, as `mktemp -d` makes them), a repository in it, and a store whose
/// set-up profile binds `probe/` writable at /warden-probe, where build commands leave traces.
struct EnvironmentFixture {
    let root: URL
    let source: URL
    let base: String
    let probe: URL
    let store: EnvironmentStore

    init(files: [String: String] = ["app.py": "VALUE = 1\n"], prepare: (URL) throws -> Void = { _ in }) throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        source = root.appendingPathComponent("source")
        base = try Self.repository(at: source, files: files, prepare: prepare)
        probe = root.appendingPathComponent("probe")
        try FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)
        var setup = try profile("setup")
        setup.extraMounts.append(SandboxProfile.Mount(source: probe.path, target: "/warden-probe", writable: true))
        store = EnvironmentStore(profile: setup, directory: root.appendingPathComponent("store"))
    }

    /// A committed repository of `files`; returns its commit.
    static func repository(at source: URL, files: [String: String], prepare: (URL) throws -> Void = { _ in }) throws -> String {
        for (path, content) in files {
            let url = source.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        try prepare(source)
        return try RepositoryBuilder.commitAll(in: source, message: "base")
    }

    func task(_ environment: TaskEnvironmentSpec, id: String = "env-1", testCommand: String? = nil) -> TaskInstance {
        TaskInstance(instanceID: id, problemStatement: "Nothing to do.", repo: "warden/envdemo", baseCommit: base,
                     testCommand: testCommand, logParser: .tap, environment: environment, extra: ["version": .string("1.0")])
    }

    /// The lines build commands appended to `probe/name`.
    func lines(_ name: String) -> [String] {
        ((try? String(contentsOf: probe.appendingPathComponent(name), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The published entries and leftovers in the store (lock files aside).
    func storeEntries() throws -> [String] {
        let environments = store.directory.appendingPathComponent("environments")
        guard FileManager.default.fileExists(atPath: environments.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: environments.path).sorted()
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

/// The network namespace of this process, to tell a jail with the host's network from one without.
func hostNetworkNamespace() throws -> String {
    try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
}

/// A pure-Python wheel of `tinypkg` (VALUE = 42), written with the host's Python.
func writeWheel(into directory: URL) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let script = """
        import sys, zipfile
        with zipfile.ZipFile(sys.argv[1] + "/tinypkg-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr("tinypkg/__init__.py", "VALUE = 42\\n")
            wheel.writestr("tinypkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: tinypkg\\nVersion: 1.0\\n")
            wheel.writestr("tinypkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
            wheel.writestr("tinypkg-1.0.dist-info/RECORD", "tinypkg/__init__.py,,\\ntinypkg-1.0.dist-info/METADATA,,\\ntinypkg-1.0.dist-info/WHEEL,,\\ntinypkg-1.0.dist-info/RECORD,,\\n")
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, directory.path]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
}

@Suite("Task environments", .serialized)
struct EnvironmentStoreTests {
    @Test("Two episodes of one environment: the first builds it with the host's network, the second starts from the store; agent and test jails see it read-only without network",
          .timeLimit(.minutes(5)))
    func builtOnceAndShared() async throws {
        let fixture = try EnvironmentFixture { try writeWheel(into: $0.appendingPathComponent("wheels")) }
        defer { fixture.remove() }
        let task = fixture.task(TaskEnvironmentSpec(
            python: "3", requirements: ["--no-index", "--find-links /testbed/wheels", "tinypkg"],
            commands: ["echo built >> /warden-probe/builds", "readlink /proc/self/ns/net > /warden-probe/netns"]),
            testCommand: "python -c 'import tinypkg' && echo 'ok 1 - imports tinypkg' || echo 'not ok 1 - imports tinypkg'")
        let host = try hostNetworkNamespace()

        var seconds: [Double] = []
        var outputs: [String] = []
        for episodeNumber in 1...2 {
            let work = fixture.root.appendingPathComponent("episode-\(episodeNumber)")
            var spec = EpisodeSpec(task: task, repository: fixture.source, configuration: AgentConfiguration(), profile: try profile("agent"),
                                   workDirectory: work, modelName: "test", wardenVersion: "test")
            spec.environments = fixture.store
            let started = ContinuousClock.now
            let episode = try await Episode.prepare(spec, trajectory: fixture.root.appendingPathComponent("trajectory-\(episodeNumber).jsonl"))
            let seen = try await episode.environment.shell.run("""
                python -c 'import sys, tinypkg; print(tinypkg.VALUE, sys.prefix)'; echo "$VIRTUAL_ENV"; pwd
                touch /opt/warden-env/planted 2>/dev/null && echo wrote || echo read-only
                readlink /proc/self/ns/net
                echo edited > app.py && cat app.py
                """)
            let elapsed = ContinuousClock.now - started
            seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            let problems = await episode.close()
            #expect(problems.isEmpty, "\(problems)")
            outputs.append(seen.stdout.text)
            let lines = seen.stdout.text.split(separator: "\n").map(String.init)
            #expect(lines.count == 6, "\(seen.stdout.text) \(seen.stderr.text)")
            guard lines.count == 6 else { continue }
            #expect(lines[0] == "42 /opt/warden-env")
            #expect(lines[1] == "/opt/warden-env")
            #expect(lines[2] == TaskEnvironmentMount.checkoutMountPoint)
            #expect(lines[3] == "read-only")
            #expect(lines[4] != host, "the agent jail has a network namespace of its own")
            #expect(lines[5] == "edited", "the checkout stays writable")
        }
        #expect(fixture.lines("builds") == ["built"], "the build ran once for both episodes")
        #expect(fixture.lines("netns") == [host], "the build ran with the host's network")
        print("environment: first episode prepared in \(seconds[0]) s (building), second in \(seconds[1]) s (from the store)")
        #expect(seconds[1] < seconds[0])

        let evaluator = Evaluator(profile: try profile("tests"), workRoot: fixture.root.appendingPathComponent("eval"), environments: fixture.store)
        let result = try await evaluator.evaluate(task, repository: fixture.source, patch: nil)
        #expect(result.statuses["imports tinypkg"] == .passed, "\(result)")
        #expect(fixture.lines("builds") == ["built"], "scoring reused the build too")
        #expect(try fixture.storeEntries().count == 1)
    }

    /// A package with an in-tree PEP 660 backend, so `pip install -e` needs no index: its
    /// editable wheel is a `.pth` naming the directory it was built from.
    static let editablePackage = [
        "pyproject.toml": "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
        "backend.py": """
            import os, zipfile
            NAME = "envdemo-1.0"
            def _wheel(directory, files):
                path = os.path.join(directory, NAME + "-py3-none-any.whl")
                with zipfile.ZipFile(path, "w") as wheel:
                    files[NAME + ".dist-info/METADATA"] = "Metadata-Version: 2.1\\nName: envdemo\\nVersion: 1.0\\n"
                    files[NAME + ".dist-info/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
                    files[NAME + ".dist-info/RECORD"] = "".join(name + ",,\\n" for name in files) + NAME + ".dist-info/RECORD,,\\n"
                    for name, content in files.items():
                        wheel.writestr(name, content)
                return os.path.basename(path)
            def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
                return _wheel(wheel_directory, {"envdemo.pth": os.getcwd() + "\\n"})
            def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
                return _wheel(wheel_directory, {"envdemo/__init__.py": open("envdemo/__init__.py").read()})
            def build_sdist(sdist_directory, config_settings=None):
                raise NotImplementedError

            """,
        "envdemo/__init__.py": "VALUE = 1\n",
    ]

    @Test("An editable install follows each episode's own checkout", .timeLimit(.minutes(3)))
    func editableInstall() async throws {
        let fixture = try EnvironmentFixture(files: Self.editablePackage)
        defer { fixture.remove() }
        let task = fixture.task(TaskEnvironmentSpec(requirements: ["--no-index"], editable: true))
        for (episodeNumber, value) in [(1, "2"), (2, "3")] {
            var spec = EpisodeSpec(task: task, repository: fixture.source, configuration: AgentConfiguration(), profile: try profile("agent"),
                                   workDirectory: fixture.root.appendingPathComponent("episode-\(episodeNumber)"), modelName: "test", wardenVersion: "test")
            spec.environments = fixture.store
            let episode = try await Episode.prepare(spec, trajectory: fixture.root.appendingPathComponent("trajectory-\(episodeNumber).jsonl"))
            let seen = try await episode.environment.shell.run("""
                cd / && python -c 'import envdemo; print(envdemo.VALUE)'
                echo 'VALUE = \(value)' > /testbed/envdemo/__init__.py && python -c 'import envdemo; print(envdemo.VALUE)'
                """)
            _ = await episode.close()
            #expect(seen.stdout.text == "1\n\(value)\n", "\(seen.stdout.text) \(seen.stderr.text)")
        }
    }

    @Test("A changed spec builds a new environment; the same spec does not", .timeLimit(.minutes(3)))
    func specChangeRebuilds() async throws {
        let fixture = try EnvironmentFixture()
        defer { fixture.remove() }
        let first = fixture.task(TaskEnvironmentSpec(commands: ["echo one >> /warden-probe/builds; mkdir -p /opt/warden-env/bin"]))
        let built = try #require(try await fixture.store.prepare(for: first, repository: fixture.source))
        let again = try #require(try await fixture.store.prepare(for: first, repository: fixture.source))
        #expect(built.built && !again.built)
        #expect(built.key == again.key)
        let changed = fixture.task(TaskEnvironmentSpec(commands: ["echo two >> /warden-probe/builds"]))
        let rebuilt = try #require(try await fixture.store.prepare(for: changed, repository: fixture.source))
        #expect(rebuilt.built && rebuilt.key != built.key)
        #expect(fixture.lines("builds") == ["one", "two"])
        #expect(try fixture.storeEntries() == [built.key, rebuilt.key].sorted())
        #expect(rebuilt.mount.writable == false)
    }

    @Test("A failing build command names the task and the command, and nothing is cached", .timeLimit(.minutes(3)))
    func failingBuild() async throws {
        let fixture = try EnvironmentFixture()
        defer { fixture.remove() }
        let task = fixture.task(TaskEnvironmentSpec(commands: ["echo start >> /warden-probe/builds", "echo broken >&2; exit 7"]), id: "broken-env")
        for _ in 1...2 {
            do {
                _ = try await fixture.store.prepare(for: task, repository: fixture.source)
                Issue.record("the build should fail")
            } catch let error as WardenError {
                #expect(error.code == "environment.build")
                #expect(error.context == "broken-env")
                #expect(error.message.contains("`echo broken >&2; exit 7` (exit 7)"), "\(error.message)")
                #expect(error.message.contains("broken"))
            }
            #expect(try fixture.storeEntries() == [], "no entry and no partial directory")
        }
        #expect(fixture.lines("builds") == ["start", "start"], "a failed build is tried again, not remembered")
    }

    @Test("Concurrent requests for one environment build it once", .timeLimit(.minutes(3)))
    func concurrentBuildsOnce() async throws {
        let fixture = try EnvironmentFixture()
        defer { fixture.remove() }
        let task = fixture.task(TaskEnvironmentSpec(commands: ["echo built >> /warden-probe/builds; sleep 1"]))
        let store = fixture.store, source = fixture.source
        let results = try await withThrowingTaskGroup(of: PreparedEnvironment?.self) { group in
            for _ in 0..<4 { group.addTask { try await store.prepare(for: task, repository: source) } }
            return try await group.reduce(into: [PreparedEnvironment]()) { if let prepared = $1 { $0.append(prepared) } }
        }
        #expect(results.count == 4)
        #expect(results.filter(\.built).count == 1)
        #expect(Set(results.map(\.key)).count == 1)
        #expect(fixture.lines("builds") == ["built"])
    }

    @Test("A builder in another process holds the lock: the store waits for it and uses its entry without building", .timeLimit(.minutes(3)))
    func waitsForAnotherProcess() async throws {
        let fixture = try EnvironmentFixture()
        defer { fixture.remove() }
        let task = fixture.task(TaskEnvironmentSpec(commands: ["echo built >> /warden-probe/builds"]))
        let key = try #require(try await fixture.store.prepare(for: task, repository: fixture.source)).key
        // A second store, and `flock` standing in for a process that is building the same entry.
        var other = fixture.store
        other.directory = fixture.root.appendingPathComponent("other-store")
        let lock = other.directory.appendingPathComponent("locks/\(key).lock"), held = fixture.root.appendingPathComponent("held")
        try FileManager.default.createDirectory(at: lock.deletingLastPathComponent(), withIntermediateDirectories: true)
        let builder = Process()
        builder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        builder.arguments = [lock.path, "sh", "-c", "touch '\(held.path)'; sleep 1.5; mkdir -p '\(other.directory.path)/environments/\(key)/env'"]
        try builder.run()
        while !FileManager.default.fileExists(atPath: held.path) { try await Task.sleep(for: .milliseconds(10)) }
        let started = ContinuousClock.now
        let prepared = try #require(try await other.prepare(for: task, repository: fixture.source))
        let waited = ContinuousClock.now - started
        builder.waitUntilExit()
        #expect(!prepared.built, "the other process's entry was used")
        #expect(waited > .milliseconds(1000), "it waited for the lock: \(waited)")
        #expect(fixture.lines("builds") == ["built"], "no second build")
    }

    @Test("A requirements file's content is part of the key; a missing one is a clear error", .timeLimit(.minutes(3)))
    func requirementsFileKeyed() async throws {
        let fixture = try EnvironmentFixture(files: ["requirements.txt": "--no-index\n"])
        defer { fixture.remove() }
        let spec = TaskEnvironmentSpec(requirementsFile: "requirements.txt", commands: ["echo built >> /warden-probe/builds"])
        let first = try #require(try await fixture.store.prepare(for: fixture.task(spec), repository: fixture.source))
        let otherSource = fixture.root.appendingPathComponent("changed")
        var changed = fixture.task(spec)
        changed.baseCommit = try EnvironmentFixture.repository(at: otherSource, files: ["requirements.txt": "--no-index\n# changed\n"])
        let second = try #require(try await fixture.store.prepare(for: changed, repository: otherSource))
        #expect(first.key != second.key && second.built)
        #expect(fixture.lines("builds") == ["built", "built"])

        var missing = spec
        missing.requirementsFile = "nope.txt"
        await #expect(throws: WardenError.self) { try await fixture.store.prepare(for: fixture.task(missing), repository: fixture.source) }
    }
}

@Suite("The environment field")
struct EnvironmentFieldTests {
    func load(_ task: String) throws -> TaskSuite {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-envfield-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("suite/t-1")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("repo"), withIntermediateDirectories: true)
        try "x = 1\n".write(to: folder.appendingPathComponent("repo/app.py"), atomically: true, encoding: .utf8)
        try task.write(to: folder.appendingPathComponent("task.json"), atomically: true, encoding: .utf8)
        return try TaskSuite.load(root.appendingPathComponent("suite").path, cache: root.appendingPathComponent("cache"))
    }

    @Test("environment is parsed: a list of requirement lines or a file, editable, commands")
    func parsed() throws {
        let listed = try load(#"{"instance_id": "t-1", "problem_statement": "p", "environment": {"python": "3.11", "requirements": ["pytest==8.0"], "editable": true, "commands": ["make"]}}"#)
        #expect(listed.tasks.first?.instance.environment == TaskEnvironmentSpec(python: "3.11", requirements: ["pytest==8.0"], editable: true, commands: ["make"]))
        let file = try load(#"{"instance_id": "t-1", "problem_statement": "p", "environment": {"requirements": "requirements/dev.txt"}}"#)
        #expect(file.tasks.first?.instance.environment?.requirementsFile == "requirements/dev.txt")
        #expect(file.tasks.first?.instance.environment?.pythonVersion == "3")
    }

    @Test("Bad environment fields are reported with the field", arguments: [
        (#"{"python": "three"}"#, "environment.python"),
        (#"{"pyhton": "3"}"#, "environment.pyhton is unknown"),
        (#"{"requirements": "../outside.txt"}"#, "inside the repository"),
        (#"{"editable": "yes"}"#, "environment.editable"),
    ])
    func rejected(field: String, message: String) throws {
        let suite = try load(#"{"instance_id": "t-1", "problem_statement": "p", "environment": \#(field)}"#)
        #expect(suite.tasks.isEmpty)
        #expect(suite.problems.first?.message.contains(message) == true, "\(suite.problems)")
    }

    @Test("A task cannot have both an image and an environment")
    func imageAndEnvironment() throws {
        let suite = try load(#"{"instance_id": "t-1", "problem_statement": "p", "image": "oci:/x", "environment": {"commands": ["true"]}}"#)
        #expect(suite.problems.first?.message.contains("environment is for tasks without an image") == true, "\(suite.problems)")
    }
}
