import Agent
import Foundation
@testable import Images
import ImagesTesting
import Sandbox
import Scoring
import Testing
import WardenCore
import Workspace

/// A SWE-bench-shaped task (`GreetTask`): the repository lives at /testbed inside its image,
/// the tests print TAP, and scoring runs in the image.
@Suite("Episodes in images")
struct ImageEpisodeTests {
    static func repository(in directory: URL) throws -> (URL, String) {
        let source = directory.appendingPathComponent("source")
        try GreetTask.writeFiles(to: source)
        return (source, try RepositoryBuilder.commitAll(in: source, message: "base"))
    }

    @Test("The oracle solves the task in its image and scoring in the image resolves it; an empty patch does not", .timeLimit(.minutes(3)))
    func oracleInImage() async throws {
        let directory = try temporaryDirectory("episode")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (source, base) = try Self.repository(in: directory)
        let image = try await ImageStore(directory: directory.appendingPathComponent("store"))
            .prepare(try ImageName("docker-archive:" + GreetTask.writeImage(in: directory).path))
        let task = TaskInstance(
            instanceID: GreetTask.instanceID, problemStatement: "greet should say Hi.", repo: "warden/greet", baseCommit: base,
            goldPatch: GreetTask.goldPatch, testPatch: GreetTask.testPatch, failToPass: GreetTask.failToPass,
            passToPass: GreetTask.passToPass, testCommand: GreetTask.testCommand, logParser: .tap, image: "docker-archive:test")
        let jailImage = try image.jailImage(name: "greet")
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
        let final = try await AgentLoop(model: OracleModel(goldPatch: GreetTask.goldPatch, protocol: configuration.protocol.handler), episode: episode).run()
        #expect(final.exitStatus == .submitted)
        #expect(final.score?.resolved == true, "\(String(describing: final.score)) \(final.scoreError ?? "")")
        #expect(final.score?.statuses["says hi"] != nil)

        let empty = try await evaluator.evaluate(task, repository: source, patch: nil, image: jailImage, mountPoint: "/testbed")
        #expect(!empty.resolved)
        #expect(empty.statuses["says hi"] != nil, "the tests ran in the image: \(empty)")
    }
}
