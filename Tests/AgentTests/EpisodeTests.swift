import Agent
import Foundation
import Sandbox
import Scoring
import Tasks
import Testing
import WardenCore

/// The Episode driven step by step, as a trainer or the environment server drives it.
@Suite("Episode: reset, step, rewards and fork")
struct EpisodeTests {
    /// The starter calcly task prepared as an episode, scored by its hidden tests.
    static func starterEpisode(in scratch: URL, rewards: RewardScheme = .plusMinusOne) async throws -> (Episode, TaskInstance) {
        let task = try #require(try TaskSuite.load(repositoryRoot.appendingPathComponent("Tasks/starter/warden__calcly-1").path,
                                                   cache: scratch.appendingPathComponent("repos")).tasks.first)
        let evaluator = Evaluator(profile: try SandboxProfile.load(repositoryRoot.appendingPathComponent("Sandboxes/tests.json").path), workRoot: scratch)
        let spec = EpisodeSpec(task: task.instance, repository: task.repository, origin: task.origin, configuration: AgentConfiguration(),
                               profile: try SandboxProfile.load(repositoryRoot.appendingPathComponent("Sandboxes/agent.json").path),
                               workDirectory: scratch.appendingPathComponent("episode-\(UUID().uuidString)"), evaluator: evaluator,
                               rewards: rewards, modelName: "trainer", wardenVersion: "test")
        return (try await Episode.prepare(spec, trajectory: scratch.appendingPathComponent("\(UUID().uuidString).jsonl")), task.instance)
    }

    @Test("the gold patch through step() reaches reward +1; an empty submission gets -1 (0 with the 1/0 scheme)")
    func rewards() async throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-episode-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let handler = CWMProtocol()

        let (solved, task) = try await Self.starterEpisode(in: scratch)
        let opening = try await solved.reset()
        #expect(opening.map(\.role) == [.system, .user])
        #expect(opening[1].content.contains("2 ** 3 ** 2"))
        let gold = try #require(task.goldPatch)
        let write = try await solved.step(handler.render(.create(path: "/tmp/gold.patch", content: gold), callID: ""))
        #expect(!write.done && write.reward == nil && write.info.exitCode == 0)
        let apply = try await solved.step(handler.render(.bash(command: "git apply /tmp/gold.patch"), callID: ""))
        #expect(apply.info.changes.map(\.path) == ["calcly/parser.py"])
        let submit = try await solved.step(handler.render(.submit(path: nil), callID: ""))
        #expect(submit.done)
        #expect(submit.reward == 1)
        #expect(submit.info.exitStatus == .submitted)
        #expect(submit.info.score?.resolved == true)
        #expect(submit.info.envError == nil)
        #expect(try await solved.nextRequest() == nil)
        await #expect(throws: WardenError.self) { try await solved.step(handler.render(.bash(command: "true"), callID: "")) }
        #expect(await solved.close().isEmpty)

        for (scheme, expected) in [(RewardScheme.plusMinusOne, -1.0), (.oneZero, 0.0)] {
            let (empty, _) = try await Self.starterEpisode(in: scratch, rewards: scheme)
            try await empty.reset()
            // CWM refuses an empty no-argument submit; a patch file that is an empty diff header is accepted and fails.
            _ = try await empty.step(handler.render(.bash(command: "printf 'diff --git a/x b/x\\n' > /tmp/empty.patch"), callID: ""))
            let result = try await empty.step(handler.render(.submit(path: "/tmp/empty.patch"), callID: ""))
            #expect(result.done)
            #expect(result.reward == expected)
            #expect(result.info.score?.resolved == false)
            #expect(await empty.close().isEmpty)
        }
    }

    /// A policy that cannot solve a task must not escape its -1 by breaking the tracker: an
    /// episode ending in a harness failure is dropped by trainers, not scored.
    @Test("a checkout the tracker cannot scan (directories nested past libgit2's 100 levels) is told to the agent and scored, never an env_error")
    func unscannableCheckoutIsTheAgentsDoing() async throws {
        let command = "mkdir -p $(printf 'd/%.0s' $(seq 110)) && touch $(printf 'd/%.0s' $(seq 110))leaf"
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-episode-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let handler = CWMProtocol()
        let (episode, _) = try await Self.starterEpisode(in: scratch)
        try await episode.reset()
        let broken = try await episode.step(handler.render(.bash(command: command), callID: ""))
        #expect(!broken.done)
        #expect(broken.info.envError == nil)
        #expect(broken.observation.last?.content.contains("the checkout's changes cannot be recorded") == true)
        #expect(broken.observation.last?.content.contains(scratch.path) == false, "host paths stay out of what the model sees")
        let refused = try await episode.step(handler.render(.submit(path: nil), callID: ""))
        #expect(!refused.done && refused.info.envError == nil)
        #expect(refused.observation.last?.content.contains("the checkout's changes cannot be recorded") == true)
        _ = try await episode.step(handler.render(.bash(command: "printf 'diff --git a/x b/x\\n' > /tmp/empty.patch"), callID: ""))
        let submit = try await episode.step(handler.render(.submit(path: "/tmp/empty.patch"), callID: ""))
        #expect(submit.done)
        #expect(submit.info.envError == nil)
        #expect(submit.reward == -1)
        #expect(submit.info.exitStatus == .submitted)
        let steps = try Trajectory.read(episode.trajectoryURL).steps
        #expect(steps.first?.trackingError?.isEmpty == false)
        #expect(await episode.close().isEmpty)
    }

    /// Whatever a command does to its own shell, the episode goes on and is scored: an agent
    /// that could end its episode as a harness failure would escape its -1.
    @Test("a command that kills, closes, stops or replaces its shell is never an env_error; the next command runs",
          arguments: [
              "exit 3", "kill -9 $$", "kill -9 -1", "exec 1>&- 2>&-", "exec >/dev/null 2>&1", "exec bash --norc --noprofile",
              "set -e; false", "kill -STOP $$", "exec 0<&-", "trap 'exit' DEBUG", "ulimit -n 3",
          ])
    func shellSabotageIsScored(command: String) async throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-episode-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let handler = CWMProtocol()
        let (episode, _) = try await Self.starterEpisode(in: scratch)
        try await episode.reset()
        let sabotage = try await episode.step(handler.render(.bash(command: command), callID: ""))
        #expect(sabotage.info.envError == nil)
        #expect(!sabotage.done)
        let next = try await episode.step(handler.render(.bash(command: "echo still-here"), callID: ""))
        #expect(next.info.envError == nil)
        #expect(next.observation.last?.content.contains("still-here") == true)
        _ = try await episode.step(handler.render(.bash(command: "printf 'diff --git a/x b/x\\n' > /tmp/empty.patch"), callID: ""))
        let submit = try await episode.step(handler.render(.submit(path: "/tmp/empty.patch"), callID: ""))
        #expect(submit.done && submit.reward == -1 && submit.info.envError == nil)
        #expect(await episode.close().isEmpty)
    }

    @Test("a path longer than PATH_MAX that the agent made in the checkout and in /tmp is removed with the episode")
    func overlongPathsAreCleanedUp() async throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-episode-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (episode, _) = try await Self.starterEpisode(in: scratch)
        try await episode.reset()
        let deep = "n=$(printf 'x%.0s' $(seq 200)); (for i in $(seq 24); do mkdir $n && cd $n; done; touch leaf)"
        let made = try await episode.step(CWMProtocol().render(.bash(command: "\(deep) && cd /tmp && \(deep)"), callID: ""))
        #expect(made.info.exitCode == 0 && made.info.envError == nil)
        #expect(await episode.close().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: episode.spec.workDirectory.path))
    }

    @Test("closing a live episode writes its final record as cancelled, unscored, and removes its work directory")
    func closeLiveEpisode() async throws {
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-episode-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (episode, _) = try await Self.starterEpisode(in: scratch)
        try await episode.reset()
        _ = try await episode.step(CWMProtocol().render(.bash(command: "echo change >> README.md"), callID: ""))
        #expect(await episode.close().isEmpty)
        #expect(await episode.close().isEmpty)
        let final = try #require(try Trajectory.read(episode.trajectoryURL).final)
        #expect(final.exitStatus == .cancelled)
        #expect(final.score == nil && final.scoreError == nil)
        #expect(final.finalDiff.contains("+change"))
        #expect(!FileManager.default.fileExists(atPath: episode.spec.workDirectory.path))
    }

    @Test("a fork from step 1 followed by another action leaves the parent's trajectory and checkout untouched")
    func forkIsolation() async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let parent = try await fixture.prepare()
        try await parent.reset()
        let handler = CWMProtocol()
        _ = try await parent.step(handler.render(.bash(command: "echo one > one.txt && mkdir -p sub && cd sub && export FORK_VAR='a b' && unset LANG"), callID: ""))
        _ = try await parent.step(handler.render(.bash(command: "echo two > two.txt; export LATER=1"), callID: ""))
        let recorded = try Data(contentsOf: fixture.trajectoryURL)
        let parentMessages = await parent.messages

        let childRoot = fixture.root.appendingPathComponent("child")
        let child = try await parent.fork(at: 1, workDirectory: childRoot, trajectory: fixture.root.appendingPathComponent("child.jsonl"))
        #expect(FileManager.default.fileExists(atPath: child.checkout.appendingPathComponent("one.txt").path))
        #expect(!FileManager.default.fileExists(atPath: child.checkout.appendingPathComponent("sub/two.txt").path))
        // The conversation up to step 1: system, user, the response, its observation.
        #expect(await child.messages == Array(parentMessages.prefix(4)))
        let result = try await child.step(handler.render(.bash(command: "echo three > three.txt; rm ../one.txt; echo \"[$FORK_VAR][${LATER-}][${LANG-unset}]\"; pwd"), callID: ""))
        #expect(result.info.step == 2)
        #expect(Set(result.info.changes.map(\.path)) == ["sub/three.txt", "one.txt"])
        // The fork's shell starts in the directory the parent's step 1 left it in.
        #expect(await child.steps.last?.command?.combined.text.hasSuffix("/sub\n") == true)
        // ... with the exports step 1 left: FORK_VAR set, LANG unset, and not step 2's LATER.
        #expect(await child.steps.last?.command?.combined.text.hasPrefix("[a b][][unset]\n") == true)

        #expect(try Data(contentsOf: fixture.trajectoryURL) == recorded)
        #expect(await parent.messages == parentMessages)
        let parentFiles = try FileManager.default.contentsOfDirectory(atPath: fixture.checkout.path).filter { !$0.hasPrefix(".") }
        #expect(Set(parentFiles) == ["app.py", "README.md", "one.txt", "sub"])
        #expect(FileManager.default.fileExists(atPath: fixture.checkout.appendingPathComponent("sub/two.txt").path))
        #expect(!FileManager.default.fileExists(atPath: fixture.checkout.appendingPathComponent("sub/three.txt").path))
        let header = try Trajectory.read(fixture.root.appendingPathComponent("child.jsonl")).header
        #expect(header.parent == EpisodeParent(trajectory: fixture.trajectoryURL.path, step: 1))
        #expect(await child.close().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: childRoot.path))
        await #expect(throws: WardenError.self) {
            try await parent.fork(at: 3, workDirectory: fixture.root.appendingPathComponent("bad"), trajectory: fixture.root.appendingPathComponent("bad.jsonl"))
        }
    }
}
