import Agent
import Foundation
import Models
import Sandbox
import Synchronization
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
    let peak = peakResidentMegabytes()  // before the floor's threads and processes
    let floor = try persistentBashFloor(episodes: episodes, concurrency: concurrency, commands: commands, source: source,
                                        scratch: root.appendingPathComponent("floor"))
    print("throughput: \(episodes) episodes x \(stepsPerEpisode) steps, \(concurrency) at once: \(formatted(Double(steps) / wall, digits: 0)) steps/s "
        + "(target >= 600 at 32 at once), harness CPU \(formatted(cpu / Double(steps) * 1000, digits: 2)) ms per step (target <= 1), "
        + "peak RSS \(formatted(peak, digits: 1)) MB (target <= 60 at 32 at once); floor in the same run: the same "
        + "commands in one persistent bash per episode, no jail: \(formatted(floor, digits: 0)) steps/s (ratio \(formatted(Double(steps) / wall / floor, digits: 2)))")
}

/// The floor: each episode's commands in one persistent bash of its own (no jail, no
/// tracking, no trajectory), `concurrency` episodes at a time, in copies of the source.
/// Returns steps per second, counting the submit as a step as the episodes do.
private func persistentBashFloor(episodes: Int, concurrency: Int, commands: [String], source: URL, scratch: URL) throws -> Double {
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    let directories = (0..<episodes).map { scratch.appendingPathComponent("episode-\($0)") }
    for directory in directories { try FileManager.default.copyItem(at: source, to: directory) }
    let slots = DispatchSemaphore(value: concurrency)
    let group = DispatchGroup()
    let failures = Mutex<[String]>([])
    let started = ContinuousClock.now
    for directory in directories {
        slots.wait()
        group.enter()
        Thread.detachNewThread {
            defer { slots.signal(); group.leave() }
            do { try runInPersistentBash(commands, in: directory) } catch { failures.withLock { $0.append("\(error)") } }
        }
    }
    group.wait()
    let wall = seconds(ContinuousClock.now - started)
    if let failure = failures.withLock({ $0.first }) { throw WardenError("bench.throughput", "the bash floor failed: \(failure)") }
    return Double(episodes * (commands.count + 1)) / wall
}

/// Runs `commands` one after another in one bash, reading each one's output up to a marker.
private func runInPersistentBash(_ commands: [String], in directory: URL) throws {
    let bash = Process()
    bash.executableURL = URL(fileURLWithPath: "/bin/bash")
    bash.arguments = ["--noprofile", "--norc"]
    bash.currentDirectoryURL = directory
    let input = Pipe(), output = Pipe()
    bash.standardInput = input
    bash.standardOutput = output
    bash.standardError = output
    try bash.run()
    let marker = Data("\u{1}done\n".utf8)
    for command in commands {
        try input.fileHandleForWriting.write(contentsOf: Data("\(command)\nprintf '\\001done\\n'\n".utf8))
        var received = Data()
        while received.range(of: marker) == nil {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw WardenError("bench.throughput", "bash ended early", context: directory.path) }
            received.append(chunk)
        }
    }
    try input.fileHandleForWriting.close()
    bash.waitUntilExit()
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
