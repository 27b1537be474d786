import Agent
import Foundation
@testable import Images
import Sandbox
import Scoring
import Testing
import WardenCore
import Workspace

/// A SWE-bench-shaped task: the repository lives at /testbed inside its image (bash, git,
/// patch and coreutils from the host), the tests print TAP, and scoring runs in the image.
@Suite("Episodes in images")
struct ImageEpisodeTests {
    static let goldPatch = """
        diff --git a/greet.sh b/greet.sh
        --- a/greet.sh
        +++ b/greet.sh
        @@ -1 +1 @@
        -greet() { echo "Hello $1"; }
        +greet() { echo "Hi $1"; }

        """
    static let testPatch = """
        diff --git a/tests/cases_hi.sh b/tests/cases_hi.sh
        new file mode 100644
        --- /dev/null
        +++ b/tests/cases_hi.sh
        @@ -0,0 +1 @@
        +check "says hi" "$(greet Ann)" "Hi Ann"

        """

    static func repository(in directory: URL) throws -> (URL, String) {
        let source = directory.appendingPathComponent("source")
        let files = [
            "greet.sh": "greet() { echo \"Hello $1\"; }\n",
            "tests/run.sh": """
                source ./greet.sh
                n=0
                check() { n=$((n+1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
                for cases in tests/cases_*.sh; do source "$cases"; done
                echo "1..$n"

                """,
            "tests/cases_words.sh": "check \"greets with two words\" \"$(greet Bob | wc -w)\" \"2\"\n",
        ]
        for (path, content) in files {
            let url = source.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
        return (source, try RepositoryBuilder.commitAll(in: source, message: "base"))
    }

    static func image(in directory: URL) async throws -> UnpackedImage {
        let root = directory.appendingPathComponent("rootfs")
        try TestImages.assembleRootfs(at: root, binaries: [
            "/bin/bash", "/bin/sh", "/bin/cat", "/usr/bin/git", "/usr/bin/patch", "/bin/date", "/usr/bin/env", "/bin/grep",
            "/bin/sed", "/bin/ls", "/bin/echo", "/bin/mkdir", "/bin/rm", "/usr/bin/tr", "/usr/bin/head", "/usr/bin/wc",
            "/usr/bin/dirname", "/usr/bin/base64",
        ])
        // The image's own copy of the repository, as SWE-bench images have; the checkout hides it.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("testbed"), withIntermediateDirectories: true)
        try "the image's stale copy\n".write(to: root.appendingPathComponent("testbed/greet.sh"), atomically: true, encoding: .utf8)
        let tar = directory.appendingPathComponent("layer.tar")
        try TestImages.tar(root, to: tar)
        let archive = directory.appendingPathComponent("image.tar")
        try TestImages.writeDockerArchive(layers: [tar], env: ["PATH=/usr/bin:/bin", "GREETING_IMAGE=1"], workingDir: "/testbed", to: archive)
        return try await ImageStore(directory: directory.appendingPathComponent("store")).prepare(try ImageName("docker-archive:" + archive.path))
    }

    @Test("The oracle solves the task in its image and scoring in the image resolves it; an empty patch does not", .timeLimit(.minutes(3)))
    func oracleInImage() async throws {
        let directory = try temporaryDirectory("episode")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (source, base) = try Self.repository(in: directory)
        let image = try await Self.image(in: directory)
        let task = TaskInstance(
            instanceID: "warden__greet-1", problemStatement: "greet should say Hi.", repo: "warden/greet", baseCommit: base,
            goldPatch: Self.goldPatch, testPatch: Self.testPatch, failToPass: ["says hi"], passToPass: ["greets with two words"],
            testCommand: "bash tests/run.sh", logParser: .tap, image: "docker-archive:test")
        let jailImage = image.jailImage(name: "greet")
        let evaluator = Evaluator(profile: try ImageJailTests.profile("tests-image"), workRoot: directory.appendingPathComponent("eval"))
        let configuration = AgentConfiguration()
        let spec = EpisodeSpec(task: task, repository: source, configuration: configuration, profile: try ImageJailTests.profile(),
                               workDirectory: directory.appendingPathComponent("work"), evaluator: evaluator, modelName: "oracle",
                               wardenVersion: "test", image: jailImage)
        let episode = try await Episode.prepare(spec, trajectory: directory.appendingPathComponent("trajectory.jsonl"))
        defer { episode.environment.shell.close() }
        #expect(episode.environment.shell.configuration.checkout == "/testbed")
        let seen = try await episode.environment.shell.run("pwd; cat greet.sh; echo $GREETING_IMAGE")
        #expect(seen.stdout.text == "/testbed\ngreet() { echo \"Hello $1\"; }\n1\n", "the checkout, not the image's copy")
        let final = try await AgentLoop(model: OracleModel(goldPatch: Self.goldPatch, protocol: configuration.protocol.handler), episode: episode).run()
        #expect(final.exitStatus == .submitted)
        #expect(final.score?.resolved == true, "\(String(describing: final.score)) \(final.scoreError ?? "")")
        #expect(final.score?.statuses["says hi"] != nil)

        let empty = try await evaluator.evaluate(task, repository: source, patch: nil, image: jailImage, mountPoint: "/testbed")
        #expect(!empty.resolved)
        #expect(empty.statuses["says hi"] != nil, "the tests ran in the image: \(empty)")
    }
}
