import Agent
import Foundation
@testable import Images
import ImagesTesting
import Runs
import Sandbox
import Scoring
import Tasks
import Testing
import WardenCore
import Workspace

/// Tasks whose repository is only in their image (SWE-bench's /testbed), with no --repos.
@Suite("Repositories from images")
struct ImageRepositoryTests {
    /// A SWE-bench file with the greet task, its image holding the repository, and no --repos.
    static func suiteFile(in directory: URL, archive: URL, base: String) throws -> URL {
        let row: [String: Any] = [
            "instance_id": GreetTask.instanceID, "repo": "warden/greet", "base_commit": base, "problem_statement": "greet should say Hi.",
            "patch": GreetTask.goldPatch, "test_patch": GreetTask.testPatch, "FAIL_TO_PASS": GreetTask.failToPass,
            "PASS_TO_PASS": GreetTask.passToPass, "test_cmd": GreetTask.testCommand + "; echo \"ok 9 - checkout at $(pwd)\"",
            "log_parser": "tap", "image": "docker-archive:" + archive.path,
        ]
        let file = directory.appendingPathComponent("tasks.jsonl")
        try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]).write(to: file)
        return file
    }

    @Test("Without --repos, the task's checkout comes from its image's /testbed at the base commit, and scoring resolves the gold patch",
          .timeLimit(.minutes(3)))
    func checkoutFromImage() async throws {
        let directory = try temporaryDirectory("image-repo")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (archive, base) = try GreetTask.writeImageWithRepository(in: directory)
        let suite = try TaskSuite.load(try Self.suiteFile(in: directory, archive: archive, base: base).path, cache: directory.appendingPathComponent("cache"))
        #expect(suite.problems.isEmpty, "\(suite.problems)")
        let task = try #require(suite.tasks.first)
        #expect(task.repositoryInImage)
        let images = TaskImages(store: ImageStore(directory: directory.appendingPathComponent("store")))
        let image = try #require(try await images.image(for: task.instance))
        let repository = try await task.repository(in: image, images: images)
        #expect(try String(contentsOf: repository.appendingPathComponent("objects/info/alternates"), encoding: .utf8)
            == image.rootfs + "/testbed/.git/objects\n")

        let spec = EpisodeSpec(task: task.instance, repository: repository, configuration: AgentConfiguration(), profile: try ImageJailTests.profile(),
                               workDirectory: directory.appendingPathComponent("work"), modelName: "test", wardenVersion: "test", image: image)
        let episode = try await Episode.prepare(spec, trajectory: directory.appendingPathComponent("trajectory.jsonl"))
        let seen = try await episode.environment.shell.run("git log --format=%H | wc -l; git rev-parse HEAD; git remote | wc -l; cat greet.sh")
        _ = await episode.close()
        #expect(seen.stdout.text == "1\n\(base)\n0\ngreet() { echo \"Hello $1\"; }\n", "\(seen.combined.text)")

        let evaluator = Evaluator(profile: try ImageJailTests.profile("tests-image"), workRoot: directory.appendingPathComponent("eval"))
        let gold = try await evaluator.evaluate(task.instance, repository: repository, patch: GreetTask.goldPatch, image: image)
        #expect(gold.resolved, "\(gold)")
        #expect(gold.statuses["checkout at /testbed"] == .passed, "scoring binds the checkout at the image's WorkingDir: \(gold.statuses)")
    }

    @Test("An image repository with alternates or a symlink in .git is refused", arguments: ["alternates", "symlink"])
    func unsafeRepositoryRefused(kind: String) async throws {
        let directory = try temporaryDirectory("image-repo")
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try GreetTask.writeImage(in: directory) { testbed in
            try GreetTask.writeFiles(to: testbed)
            _ = try RepositoryBuilder.commitAll(in: testbed, message: "base")
            if kind == "alternates" {
                try "/root/.cache/some-repo/objects\n".write(to: testbed.appendingPathComponent(".git/objects/info/alternates"), atomically: true, encoding: .utf8)
            } else {
                try FileManager.default.createSymbolicLink(atPath: testbed.appendingPathComponent(".git/objects/host").path, withDestinationPath: "/")
            }
        }
        let image = try await ImageStore(directory: directory.appendingPathComponent("store")).prepare(try ImageName("docker-archive:" + archive.path))
        do {
            _ = try await ImageRepository.repository(of: try image.jailImage(name: "greet"), store: ImageStore(directory: directory.appendingPathComponent("store")))
            Issue.record("the repository should be refused")
        } catch let error as WardenError {
            #expect(error.code == "image.repository")
            #expect(error.message.contains(kind == "alternates" ? "objects/info/alternates" : "symlink in .git"), "\(error.message)")
        }
    }
}
