import Agent
import Foundation
import Sandbox
import WardenCore
import Workspace

/// Forking a live episode at step 10 against starting a fresh one, on a 20-file repository:
/// each measured from the call to the end of the first command in the new jail, alternating so
/// load on the machine falls on both alike.
func runForkBenchmarks(rounds: Int = 15) async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-fork-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let source = root.appendingPathComponent("source")
    try FileManager.default.createDirectory(at: source.appendingPathComponent("pkg"), withIntermediateDirectories: true)
    for index in 0..<20 {
        try String(repeating: "value_\(index) = \(index)\n", count: 40).write(to: source.appendingPathComponent("pkg/module\(index).py"), atomically: true, encoding: .utf8)
    }
    var task = TaskInstance(instanceID: "bench-fork", problemStatement: "bench")
    task.baseCommit = try RepositoryBuilder.commitAll(in: source, message: "base")
    let profile = try SandboxProfile.load("agent")
    func spec(_ name: String) -> EpisodeSpec {
        EpisodeSpec(task: task, repository: source, configuration: AgentConfiguration(), profile: profile,
                    workDirectory: root.appendingPathComponent(name), modelName: "bench", wardenVersion: "bench")
    }
    let handler = CWMProtocol()
    let parent = try await Episode.prepare(spec("parent"), trajectory: root.appendingPathComponent("parent.jsonl"))
    try await parent.reset()
    for step in 0..<10 {
        let command = step % 2 == 0 ? "sed -i 's/= \(step)$/= \(step + 100)/' pkg/module\(step).py" : "echo note \(step) >> NOTES.txt; cat pkg/module\(step).py > /dev/null"
        _ = try await parent.step(handler.render(.bash(command: command), callID: ""))
    }
    let probe = handler.render(.bash(command: "true"), callID: "")

    var fresh: [Double] = [], forked: [Double] = []
    for round in 0..<rounds {
        let started = ContinuousClock.now
        let episode = try await Episode.prepare(spec("fresh-\(round)"), trajectory: root.appendingPathComponent("fresh-\(round).jsonl"))
        try await episode.reset()
        _ = try await episode.step(probe)
        fresh.append(milliseconds(since: started))
        for problem in await episode.close() { print("fork: \(problem)") }

        let forkStarted = ContinuousClock.now
        let child = try await parent.fork(at: 10, workDirectory: root.appendingPathComponent("fork-\(round)"), trajectory: root.appendingPathComponent("fork-\(round).jsonl"))
        _ = try await child.step(probe)
        forked.append(milliseconds(since: forkStarted))
        for problem in await child.close() { print("fork: \(problem)") }
    }
    for problem in await parent.close() { print("fork: \(problem)") }
    let (freshMedian, forkMedian) = (percentile(fresh, 0.5), percentile(forked, 0.5))
    print("fork: 20-file repository, to the end of the first command: fresh episode median \(formatted(freshMedian, digits: 1)) ms, "
        + "fork at step 10 median \(formatted(forkMedian, digits: 1)) ms; fork costs \(formatted(forkMedian - freshMedian, digits: 1)) ms more "
        + "(ratio \(formatted(forkMedian / freshMedian, digits: 2)); target <= 30 ms more), \(rounds) rounds alternating")
}

private func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}
