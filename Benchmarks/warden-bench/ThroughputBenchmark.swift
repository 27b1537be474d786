import Agent
import Foundation
import Models
import Sandbox
import WardenCore
import Workspace

/// Harness throughput with an instant replay model: many concurrent episodes of cheap
/// commands, reporting steps per second, the harness's CPU time per step and peak memory.
func runThroughputBenchmarks(episodes: Int = 32, concurrency: Int = 16, stepsPerEpisode: Int = 20) async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-throughput-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let source = root.appendingPathComponent("source")
    try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
    for index in 0..<50 { try "line \(index)\n".write(to: source.appendingPathComponent("file\(index).txt"), atomically: true, encoding: .utf8) }
    let base = try RepositoryBuilder.commitAll(in: source, message: "base")
    let profile = try SandboxProfile.load("agent")
    let handler = CWMProtocol()
    let commands = (0..<stepsPerEpisode - 1).map { $0 % 5 == 0 ? "echo change \($0) >> file\($0).txt" : "cat file\($0).txt" }
    let responses = (commands.map { AgentAction.bash(command: $0) } + [.submit(path: nil)]).map { handler.render($0, callID: "") }

    let cpuBefore = processCPUSeconds()
    let started = ContinuousClock.now
    let steps = try await withThrowingTaskGroup(of: Int.self) { group in
        var launched = 0
        var total = 0
        func launch() {
            guard launched < episodes else { return }
            let index = launched
            launched += 1
            group.addTask {
                var task = TaskInstance(instanceID: "bench-\(index)", problemStatement: "bench")
                task.baseCommit = base
                // As `warden run` does: Episode.prepare sets up off the concurrency pool.
                let spec = EpisodeSpec(task: task, repository: source, configuration: AgentConfiguration(), profile: profile,
                                       workDirectory: root.appendingPathComponent("episode-\(index)"), modelName: "replay", wardenVersion: "bench")
                let episode = try await Episode.prepare(spec, trajectory: root.appendingPathComponent("trajectory-\(index).jsonl"))
                let final = try await AgentLoop(model: ReplayClient(responses: responses), episode: episode).run()
                for problem in await episode.close() { print("throughput: \(problem)") }
                return final.steps
            }
        }
        for _ in 0..<concurrency { launch() }
        while let finished = try await group.next() {
            total += finished
            launch()
        }
        return total
    }
    let wall = seconds(ContinuousClock.now - started)
    let cpu = processCPUSeconds() - cpuBefore
    print("throughput: \(episodes) episodes x \(stepsPerEpisode) steps, \(concurrency) at once: \(formatted(Double(steps) / wall, digits: 0)) steps/s "
        + "(target >= 600 at 32 at once), harness CPU \(formatted(cpu / Double(steps) * 1000, digits: 2)) ms per step (target <= 1), "
        + "peak RSS \(formatted(peakResidentMegabytes(), digits: 1)) MB (target <= 60 at 32 at once)")
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// User plus system CPU time of this process (not its children: the jails are not the harness).
private func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
