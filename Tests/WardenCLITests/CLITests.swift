import Foundation
import Testing

/// End-to-end tests of the built `warden` binary, as a user runs it.
@Suite("warden command line")
struct CLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var binary: URL {
        let products = Bundle.main.bundleURL.deletingLastPathComponent()
        let candidates = [products.appendingPathComponent("warden"), root.appendingPathComponent(".build/debug/warden")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[1]
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs warden with the arguments, feeding `input` on stdin, from the repository root, with
    /// `environment` added to the test's own.
    @discardableResult
    static func warden(_ arguments: [String], input: String = "", environment: [String: String] = [:]) throws -> Outcome {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.currentDirectoryURL = root
        // Output goes to files, so neither stream can fill a pipe while the other is read.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-cli-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outPath = scratch.appendingPathComponent("stdout"), errPath = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outPath.path, contents: nil)
        FileManager.default.createFile(atPath: errPath.path, contents: nil)
        let stdin = Pipe()
        process.standardInput = stdin
        process.standardOutput = try FileHandle(forWritingTo: outPath)
        process.standardError = try FileHandle(forWritingTo: errPath)
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus,
                       stdout: try String(contentsOf: outPath, encoding: .utf8),
                       stderr: try String(contentsOf: errPath, encoding: .utf8))
    }

    /// A git repository with one commit in a fresh 0700 temp directory.
    static func makeRepository() throws -> URL {
        let parent = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let repository = parent.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repository, withIntermediateDirectories: true)
        try "print('hi')\n".write(to: repository.appendingPathComponent("main.py"), atomically: true, encoding: .utf8)
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/bin/bash")
        git.arguments = ["-c", "cd '\(repository.path)' && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm base"]
        try git.run()
        git.waitUntilExit()
        return repository
    }

    @Test("exec --json reports the result and the changed files")
    func execJSON() throws {
        let repository = try Self.makeRepository()
        defer { try? FileManager.default.removeItem(at: repository.deletingLastPathComponent()) }
        let outcome = try Self.warden(["exec", "--repo", repository.path, "--json", "--", "echo new > added.txt; rm main.py; echo out; echo err >&2; exit 3"])
        #expect(outcome.status == 3)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["exit_code"] as? Int == 3)
        #expect(object["timed_out"] as? Bool == false)
        #expect(object["stdout"] as? String == "out\n")
        #expect(object["stderr"] as? String == "err\n")
        #expect((object["duration_ms"] as? Double ?? -1) >= 0)
        #expect((object["cwd"] as? String)?.hasSuffix("/repo") == true)
        let changes = try #require(object["changes"] as? [[String: String]])
        #expect(changes.contains(["path": "added.txt", "status": "added"]))
        #expect(changes.contains(["path": "main.py", "status": "deleted"]))
    }

    @Test("exec exits 124 on timeout and passes words through quoting")
    func execTimeoutAndQuoting() throws {
        let repository = try Self.makeRepository()
        defer { try? FileManager.default.removeItem(at: repository.deletingLastPathComponent()) }
        let timedOut = try Self.warden(["exec", "--repo", repository.path, "--timeout", "1", "--", "sleep 30"])
        #expect(timedOut.status == 124)
        #expect(timedOut.stderr.contains("timed out"))
        let quoted = try Self.warden(["exec", "--repo", repository.path, "--", "printf", "%s|", "a b", "c'd"])
        #expect(quoted.status == 0)
        #expect(quoted.stdout == "a b|c'd|")
    }

    @Test("exec --json on a timeout has exit_code 124, the process's own status, and timed_out")
    func execJSONTimeout() throws {
        let repository = try Self.makeRepository()
        defer { try? FileManager.default.removeItem(at: repository.deletingLastPathComponent()) }
        let outcome = try Self.warden(["exec", "--repo", repository.path, "--json", "--timeout", "1", "--", "echo started; sleep 30"])
        #expect(outcome.status == 124)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any])
        #expect(object["exit_code"] as? Int == 124)
        #expect(object["timed_out"] as? Bool == true)
        #expect(object["stdout"] as? String == "started\n")
    }

    @Test(".git of the user's repository is read-only in exec and shell unless --writable-git")
    func gitDirectoryReadOnly() throws {
        let repository = try Self.makeRepository()
        defer { try? FileManager.default.removeItem(at: repository.deletingLastPathComponent()) }
        let hook = repository.appendingPathComponent(".git/hooks/pre-commit")
        let config = repository.appendingPathComponent(".git/config")
        let configBefore = try String(contentsOf: config, encoding: .utf8)
        let plant = "mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/pre-commit; hook=$?; "
            + "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config; echo \"$hook $?\""

        let refused = try Self.warden(["exec", "--repo", repository.path, "--", plant])
        #expect(refused.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1 1")
        #expect(refused.stderr.contains("Read-only file system"))
        #expect(!FileManager.default.fileExists(atPath: hook.path))
        #expect(try String(contentsOf: config, encoding: .utf8) == configBefore)

        let shell = try Self.warden(["shell", "--repo", repository.path], input: plant + "\n")
        #expect(shell.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1 1")
        #expect(!FileManager.default.fileExists(atPath: hook.path))
        #expect(try String(contentsOf: config, encoding: .utf8) == configBefore)

        let allowed = try Self.warden(["exec", "--repo", repository.path, "--writable-git", "--", plant])
        #expect(allowed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0 0")
        #expect(FileManager.default.fileExists(atPath: hook.path))
        #expect(try String(contentsOf: config, encoding: .utf8).contains("fsmonitor"))
    }

    @Test("usage and profile errors go to stderr with a non-zero exit")
    func errors() throws {
        let noCommand = try Self.warden(["exec", "--repo", "."])
        #expect(noCommand.status != 0)
        #expect(noCommand.stderr.contains("after --"))

        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-profile-\(UUID().uuidString).json")
        try #"{"limits": {"memory_mb": -5}}"#.write(to: directory, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: directory) }
        let badProfile = try Self.warden(["exec", "--repo", ".", "--profile", directory.path, "--", "true"])
        #expect(badProfile.status != 0)
        #expect(badProfile.stderr.contains("\(directory.path): limits.memory_mb: must be a positive whole number"))

        for command in ["exec", "shell", "demo"] {
            let help = try Self.warden([command, "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("USAGE"))
        }
    }

    /// Every library the loader maps costs start-up time: libxml2 with its libicu and liblzma was
    /// 1.6 ms of each 28 ms start, for the JUnit parser alone.
    @Test("warden starts without libxml2 and FoundationXML")
    func noXMLLibraries() throws {
        let outcome = try Self.warden(["--help"], environment: ["LD_DEBUG": "libs"])
        #expect(outcome.status == 0)
        #expect(outcome.stderr.contains("find library=libc.so.6"), "LD_DEBUG had no effect")
        #expect(!outcome.stderr.contains("libxml2"))
        #expect(!outcome.stderr.contains("FoundationXML"))
    }

    /// libgit2, the libraries under it and libseccomp are linked from their static archives
    /// (2.1 ms of loading per start as shared objects), and GSS-API is not linked at all
    /// (Sources/CGitOffline): another seven shared objects.
    @Test("warden loads no shared libgit2, libseccomp, libcrypto or Kerberos")
    func staticSystemLibraries() throws {
        let outcome = try Self.warden(["--help"], environment: ["LD_DEBUG": "libs"])
        #expect(outcome.status == 0)
        #expect(outcome.stderr.contains("find library=libc.so.6"), "LD_DEBUG had no effect")
        for library in ["libgit2", "libssh2", "libmbed", "libhttp_parser", "libpcre2", "libcrypto", "libseccomp", "libgssapi", "libkrb5"] {
            #expect(!outcome.stderr.contains("find library=\(library)"), "\(library) is loaded")
        }
    }

    @Test("shell reads one command per line from a pipe and keeps state between them")
    func scriptedShell() throws {
        let repository = try Self.makeRepository()
        defer { try? FileManager.default.removeItem(at: repository.deletingLastPathComponent()) }
        let outcome = try Self.warden(["shell", "--repo", repository.path], input: "mkdir sub && cd sub\nexport X=7\necho $X > x.txt; pwd\nfalse\n")
        #expect(outcome.status == 0)
        #expect(outcome.stdout == "\(repository.resolvingSymlinksInPath().path)/sub\n")
        #expect(outcome.stderr.contains("A sub/x.txt"))
        #expect(outcome.stderr.contains("[exit 1"))

        let json = try Self.warden(["shell", "--repo", repository.path, "--json"], input: "echo hi > y.txt\n")
        let record = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((record["changes"] as? [[String: String]])?.first == ["path": "y.txt", "status": "added"])
    }

    @Test("killing the harness with SIGKILL kills its jails, detached children included")
    func jailDiesWithHarness() throws {
        let repository = try Self.makeRepository()
        defer { try? FileManager.default.removeItem(at: repository.deletingLastPathComponent()) }
        let tag = "53\(Int.random(in: 100_000...999_999))"
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["shell", "--repo", repository.path]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        stdin.fileHandleForWriting.write(Data("(setsid sleep \(tag) &); nohup sleep \(tag) >/dev/null 2>&1 & echo started\n".utf8))
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("started") {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += chunk
        }
        #expect(String(decoding: seen, as: UTF8.self).contains("started"))
        // The background sleeps may still be between fork and exec when "started" arrives.
        var running = Self.processes(containing: "sleep \(tag)")
        for _ in 0..<100 where running < 2 {
            usleep(20_000)
            running = Self.processes(containing: "sleep \(tag)")
        }
        #expect(running == 2)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        var remaining = Self.processes(containing: "sleep \(tag)")
        for _ in 0..<40 where remaining > 0 {
            usleep(50_000)
            remaining = Self.processes(containing: "sleep \(tag)")
        }
        #expect(remaining == 0)
    }

    @Test("demo runs the scripted fix end to end")
    func demo() throws {
        let outcome = try Self.warden(["demo"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("changed: M wordstats/core.py"))
        #expect(outcome.stdout.contains("+    return Counter(word for word in WORD.findall(text.lower()))"))
        #expect(outcome.stdout.contains("tests pass after the fix"))
    }

    /// Counts host processes whose command line contains `text`.
    static func processes(containing text: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(text)
        }.count
    }
}

@Suite("warden solve, show and replay")
struct SolveCLITests {
    static let gold = """
        diff --git a/main.py b/main.py
        --- a/main.py
        +++ b/main.py
        @@ -1 +1 @@
        -print('hi')
        +print('hello')

        """

    @Test("the oracle solves, show prints the trajectory, replay reproduces it, --apply patches the tree")
    func oracleSolveShowReplay() throws {
        let repository = try CLITests.makeRepository()
        let parent = repository.deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: parent) }
        let goldFile = parent.appendingPathComponent("gold.patch")
        try Self.gold.write(to: goldFile, atomically: true, encoding: .utf8)
        let out = parent.appendingPathComponent("out")
        let solved = try CLITests.warden(["solve", "--repo", repository.path, "--issue-text", "say hello", "--gold-patch", goldFile.path,
                                          "--out", out.path, "--apply", "--protocol", "tools"])
        #expect(solved.status == 0, "\(solved.stderr)")
        #expect(solved.stdout.contains("+print('hello')"))
        #expect(try String(contentsOf: out.appendingPathComponent("patch.diff"), encoding: .utf8) == solved.stdout)
        #expect(try String(contentsOf: repository.appendingPathComponent("main.py"), encoding: .utf8) == "print('hello')\n")

        // The header names the version and commit that `--version` prints.
        let version = try CLITests.warden(["--version"])
        #expect(version.stdout.wholeMatch(of: /0\.\d+\.\d+ \(commit ([0-9a-f]{40}(-dirty)?|unknown)\)\n/) != nil, "\(version.stdout)")
        let firstLine = try String(contentsOf: out.appendingPathComponent("trajectory.jsonl"), encoding: .utf8).prefix { $0 != "\n" }
        let header = try #require(try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any])
        #expect(header["wardenVersion"] as? String == version.stdout.trimmingCharacters(in: .newlines))

        let shown = try CLITests.warden(["show", out.appendingPathComponent("trajectory.jsonl").path])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("protocol tools"))
        #expect(shown.stdout.contains("── submitted after 3 steps"))
        #expect(shown.stdout.contains("changed: modified main.py"))

        let replayed = try CLITests.warden(["replay", out.appendingPathComponent("trajectory.jsonl").path])
        #expect(replayed.status == 0, "\(replayed.stdout)")
        #expect(replayed.stdout.hasSuffix("0 of 3 steps differ\n"))
    }

    @Test("a solve killed with SIGKILL mid-episode leaves a readable trajectory")
    func killedEpisodeIsReadable() throws {
        let repository = try CLITests.makeRepository()
        let parent = repository.deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: parent) }
        let responses = parent.appendingPathComponent("responses.json")
        try #"["<tool: bash>\necho one > one.txt\n</tool>", "<tool: bash>\nsleep 60\n</tool>"]"#.write(to: responses, atomically: true, encoding: .utf8)
        let out = parent.appendingPathComponent("out")
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["solve", "--repo", repository.path, "--issue-text", "x", "--model", "replay:\(responses.path)", "--out", out.path, "--quiet"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let trajectory = out.appendingPathComponent("trajectory.jsonl")
        var lines = 0
        for _ in 0..<200 where lines < 2 {
            usleep(50_000)
            lines = ((try? String(contentsOf: trajectory, encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        #expect(lines == 2)  // the header and step 1; step 2 is sleeping
        usleep(300_000)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let shown = try CLITests.warden(["show", trajectory.path])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("$ echo one > one.txt"))
        #expect(shown.stdout.contains("changed: added one.txt"))
        #expect(shown.stdout.contains("no final record"))
    }

    @Test("SIGINT ends the episode cleanly with the cancelled status")
    func interruptedEpisode() throws {
        let repository = try CLITests.makeRepository()
        let parent = repository.deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: parent) }
        let responses = parent.appendingPathComponent("responses.json")
        try #"["<tool: bash>\nsleep 60\n</tool>"]"#.write(to: responses, atomically: true, encoding: .utf8)
        let out = parent.appendingPathComponent("out")
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["solve", "--repo", repository.path, "--issue-text", "x", "--model", "replay:\(responses.path)", "--out", out.path, "--quiet"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(1_500_000)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let text = try String(contentsOf: out.appendingPathComponent("trajectory.jsonl"), encoding: .utf8)
        let last = try #require(text.split(separator: "\n").last)
        let final = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(final["type"] as? String == "final")
        #expect(final["exitStatus"] as? String == "cancelled")
    }
}

@Suite("warden run, resume, shards and merge")
struct RunCLITests {
    static let filter = "jsonptr-1|strutil|wrapkit"

    static func report(_ directory: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("report.json"))) as? [String: Any])
    }

    static func resultKeys(_ directory: URL) throws -> [String] {
        try String(contentsOf: directory.appendingPathComponent("results.jsonl"), encoding: .utf8).split(separator: "\n").map { line in
            let row = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return "\(row["instance_id"] ?? "")#\(row["attempt"] ?? "")"
        }
    }

    static func scratch() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-run-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("a run killed with SIGKILL resumes to the same results, with no duplicated rows")
    func killAndResume() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let reference = root.appendingPathComponent("reference"), resumed = root.appendingPathComponent("resumed")
        let arguments = ["run", "Tasks/starter", "--filter", Self.filter, "--model", "oracle", "--attempts", "2", "--workers", "2"]
        #expect(try CLITests.warden(arguments + ["--out", reference.path]).status == 0)

        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = arguments + ["--out", resumed.path]
        process.currentDirectoryURL = CLITests.root
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var rows = 0
        for _ in 0..<600 where rows < 2 {
            usleep(20_000)
            rows = (try? Self.resultKeys(resumed).count) ?? 0
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(rows >= 1 && rows < 6)

        let again = try CLITests.warden(arguments + ["--out", resumed.path])
        #expect(again.status == 0, "\(again.stderr)")
        let keys = try Self.resultKeys(resumed)
        #expect(keys.count == Set(keys).count)
        #expect(Set(keys) == Set(try Self.resultKeys(reference)))
        let (a, b) = (try Self.report(reference), try Self.report(resumed))
        #expect(a["pass@1"] as? Double == b["pass@1"] as? Double)
        #expect(a["finished_attempts"] as? Int == 6)
        #expect(b["finished_attempts"] as? Int == 6)
        #expect(a["exit_statuses"] as? [String: Int] == b["exit_statuses"] as? [String: Int])
    }

    @Test("run --log-format json writes one JSON object per line to stderr, with task, attempt and step metadata")
    func jsonLogs() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let outcome = try CLITests.warden(["run", "Tasks/starter", "--filter", "strutil", "--model", "oracle", "--log-format", "json",
                                           "--log-level", "debug", "--out", root.appendingPathComponent("run").path])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let records = try outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "not a JSON object: \(line)")
        }
        let steps = records.filter { $0["message"] == "step" }
        #expect(steps.count == 3, "\(records)")
        #expect(steps.allSatisfy { $0["task"] == "warden__strutil-1" && $0["attempt"] == "1" && $0["level"] == "debug" })
        #expect(steps.map { $0["step"] } == ["1", "2", "3"])
        #expect(records.contains { $0["message"] == "episode ended" && $0["status"] == "submitted" && $0["resolved"] == "true" })
        // Every line on stderr that is a record is one whole object (no text records mixed in).
        #expect(outcome.stderr.split(separator: "\n").allSatisfy { !$0.contains("warden.episode:") })
        // A bad value is a usage error naming the option.
        let bad = try CLITests.warden(["run", "Tasks/starter", "--model", "oracle", "--log-format", "xml"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--log-format must be text or json"))
    }

    @Test("a run's trajectory replays with no flags, and a fork from step 1 leaves its parent untouched")
    func replayAndForkFromRunDirectory() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = root.appendingPathComponent("run")
        #expect(try CLITests.warden(["run", "Tasks/starter", "--filter", "strutil", "--model", "oracle", "--out", run.path]).status == 0)
        // The run's materialized repositories are gone; the trajectory says where the task is.
        let parent = run.appendingPathComponent("trajectories/warden__strutil-1/1.jsonl")
        let recorded = try Data(contentsOf: parent)
        let replayed = try CLITests.warden(["replay", parent.path])
        #expect(replayed.status == 0, "\(replayed.stdout)\(replayed.stderr)")
        #expect(replayed.stdout.hasSuffix("0 of 3 steps differ\n"))

        // Step 1 wrote the gold patch to /tmp; the fork takes another way from there.
        let responses = root.appendingPathComponent("responses.json")
        try #"["<tool: bash>\necho forked > FORKED.txt\n</tool>", "<tool: submit>\n</tool>"]"#.write(to: responses, atomically: true, encoding: .utf8)
        let out = root.appendingPathComponent("fork")
        let forked = try CLITests.warden(["fork", parent.path, "--step", "1", "--model", "replay:\(responses.path)", "--out", out.path, "--quiet"])
        #expect(forked.status == 0, "\(forked.stderr)")
        #expect(forked.stderr.contains("not resolved"))
        #expect(try Data(contentsOf: parent) == recorded)
        let lines = try String(contentsOf: out.appendingPathComponent("trajectory.jsonl"), encoding: .utf8).split(separator: "\n")
        let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let lineage = try #require(header["parent"] as? [String: Any])
        #expect(lineage["step"] as? Int == 1)
        #expect(lineage["trajectory"] as? String == parent.path)
        // The recorded step 1, then the fork's two steps, then the final record.
        #expect(lines.count == 5)
        let patch = try String(contentsOf: out.appendingPathComponent("patch.diff"), encoding: .utf8)
        #expect(patch.contains("FORKED.txt"))
        #expect(!patch.contains("strutil/"), "the gold patch was only written to /tmp at step 1, never applied")
    }

    @Test("a torn last line left by a kill is cut off on resume, and its attempt is redone")
    func tornLastLine() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = root.appendingPathComponent("run")
        let arguments = ["run", "Tasks/starter", "--filter", "strutil", "--model", "oracle", "--attempts", "2", "--out", run.path]
        #expect(try CLITests.warden(arguments).status == 0)
        let results = run.appendingPathComponent("results.jsonl")
        let whole = try Data(contentsOf: results)
        let lines = whole.split(separator: 0x0a)
        #expect(lines.count == 2)
        // A kill in the middle of the second row's write: half of it is on disk, no newline.
        try (lines[0] + [0x0a] + lines[1].prefix(lines[1].count / 2)).write(to: results)

        let again = try CLITests.warden(arguments)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("removed a torn last line"))
        #expect(Set(try Self.resultKeys(run)) == ["warden__strutil-1#1", "warden__strutil-1#2"])
        #expect(try Self.report(run)["finished_attempts"] as? Int == 2)
    }

    @Test("a result row that cannot be written stops the run with an error naming results.jsonl")
    func appendFailureIsLoud() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        try FileManager.default.createSymbolicLink(atPath: run.appendingPathComponent("results.jsonl").path, withDestinationPath: "/dev/full")
        let outcome = try CLITests.warden(["run", "Tasks/starter", "--filter", "strutil", "--model", "oracle", "--out", run.path])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("results.jsonl"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("No space left on device"), "\(outcome.stderr)")
    }

    @Test("two shards merged give the same report as one run; another configuration is refused")
    func shardsMerge() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let arguments = ["run", "Tasks/starter", "--filter", Self.filter, "--model", "oracle", "--attempts", "2"]
        let whole = root.appendingPathComponent("whole")
        #expect(try CLITests.warden(arguments + ["--out", whole.path]).status == 0)
        for index in 1...2 {
            #expect(try CLITests.warden(arguments + ["--shard", "\(index)/2", "--out", root.appendingPathComponent("shard\(index)").path]).status == 0)
        }
        let merged = root.appendingPathComponent("merged")
        let merge = try CLITests.warden(["merge", root.appendingPathComponent("shard1").path, root.appendingPathComponent("shard2").path, "--out", merged.path])
        #expect(merge.status == 0, "\(merge.stderr)")
        var (a, b) = (try Self.report(whole), try Self.report(merged))
        a["episode_seconds"] = nil; b["episode_seconds"] = nil
        a["score_seconds"] = nil; b["score_seconds"] = nil
        #expect(NSDictionary(dictionary: a).isEqual(to: b))
        #expect(FileManager.default.fileExists(atPath: merged.appendingPathComponent("trajectories/warden__wrapkit-1/2.jsonl").path))

        let refused = try CLITests.warden(arguments + ["--attempts", "3", "--out", whole.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("another configuration"))
    }

    @Test("a malformed row and a missing repository are reported and the rest finishes")
    func badRows() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let repos = root.appendingPathComponent("repos")
        try FileManager.default.createDirectory(at: repos, withIntermediateDirectories: true)
        // One good repository: the wrapkit task's files, committed.
        let good = repos.appendingPathComponent("warden__wrapkit")
        try FileManager.default.copyItem(at: CLITests.root.appendingPathComponent("Tasks/starter/warden__wrapkit-1/repo"), to: good)
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/bin/bash")
        git.arguments = ["-c", "cd '\(good.path)' && git init -q -b main && git add -A && GIT_AUTHOR_DATE='@1700000000 +0000' GIT_COMMITTER_DATE='@1700000000 +0000' git -c user.name=Warden -c user.email=warden@warden.invalid commit -qm x"]
        try git.run()
        git.waitUntilExit()
        let task = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: CLITests.root.appendingPathComponent("Tasks/starter/warden__wrapkit-1/task.json"))) as? [String: Any])
        var row = task
        let commit = try String(decoding: Data(contentsOf: good.appendingPathComponent(".git/refs/heads/main")), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        row["base_commit"] = commit
        row["patch"] = try String(contentsOf: CLITests.root.appendingPathComponent("Tasks/starter/warden__wrapkit-1/gold.patch"), encoding: .utf8)
        row["test_patch"] = try String(contentsOf: CLITests.root.appendingPathComponent("Tasks/starter/warden__wrapkit-1/test.patch"), encoding: .utf8)
        var missing = row
        missing["instance_id"] = "other__absent-1"
        missing["repo"] = "other/absent"
        var escaping = row
        escaping["instance_id"] = "../../escape"
        let lines = [
            String(decoding: try JSONSerialization.data(withJSONObject: row), as: UTF8.self),
            "{this is not json",
            String(decoding: try JSONSerialization.data(withJSONObject: missing), as: UTF8.self),
            String(decoding: try JSONSerialization.data(withJSONObject: escaping), as: UTF8.self),
        ]
        let file = root.appendingPathComponent("instances.jsonl")
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        let run = try CLITests.warden(["run", file.path, "--repos", repos.path, "--model", "oracle", "--out", root.appendingPathComponent("run").path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("instances.jsonl:2: not valid JSON"))
        #expect(run.stderr.contains("repository other/absent not found"))
        #expect(run.stderr.contains("instances.jsonl:4: instance_id \"../../escape\" contains a path separator"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("escape").path))
        #expect(run.stdout.contains("warden__wrapkit-1  1/1"))
    }
}
