import Agent
import Foundation
import Models
import Sandbox
import Synchronization
import WardenCore
import Workspace

/// A replayed 20-command episode on a small repository: the harness's own cost per step
/// (step wall time minus the command's own time), with change tracking and trajectory writes.
func runAgentBenchmarks(episodes: Int = 5) async throws {
    let commands = [
        "ls", "ls -la src", "grep -rn 'def ' src", "cat src/calc.py", "cat README.md",
        "sed -i 's/a - b/a + b/' src/calc.py", "python3 -c 'import sys; sys.path.insert(0, \"src\"); import calc; print(calc.add(2, 3))'",
        "seq 1 20000", "grep -c 1 README.md", "false", "cat does-not-exist", "wc -l src/*.py", "head -n 3 src/calc.py",
        "echo note > NOTES.txt", "git status --short", "find . -name '*.py' -not -path './.git/*'", "pwd", "echo $HOME",
        "tail -n 2 src/calc.py",
    ]
    var overheads: [Double] = []
    for _ in 0..<episodes {
        overheads += try await runOneEpisode(commands)
    }
    print("agent: 20-step replayed episode, harness overhead per step (step wall time minus command time), \(overheads.count) steps:")
    print("agent:   median \(formatted(percentile(overheads, 0.5))) ms, p95 \(formatted(percentile(overheads, 0.95))) ms (target: median <= 1 ms)")
}

private func runOneEpisode(_ commands: [String]) async throws -> [Double] {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-agent-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let source = root.appendingPathComponent("source")
    try FileManager.default.createDirectory(at: source.appendingPathComponent("src"), withIntermediateDirectories: true)
    try "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n".write(to: source.appendingPathComponent("src/calc.py"), atomically: true, encoding: .utf8)
    try "# calc\n\nA calculator, version 1.\n".write(to: source.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
    let base = try RepositoryBuilder.commitAll(in: source, message: "base")
    var task = TaskInstance(instanceID: "bench", problemStatement: "Fix add.")
    task.baseCommit = base
    let spec = EpisodeSpec(task: task, repository: source, configuration: AgentConfiguration(), profile: try SandboxProfile.load("agent"),
                           workDirectory: root.appendingPathComponent("episode"), modelName: "replay", wardenVersion: "bench")
    let episode = try await Episode.prepare(spec, trajectory: root.appendingPathComponent("trajectory.jsonl"))
    try episode.environment.shell.start()
    let handler = CWMProtocol()
    let responses = (commands.map { AgentAction.bash(command: $0) } + [.submit(path: nil)]).map { handler.render($0, callID: "") }
    let model = ReplayClient(responses: responses)

    let marks = Mutex<[(ContinuousClock.Instant, Double)]>([])
    let loop = AgentLoop(model: model, episode: episode, onEvent: { event in
        if case let .step(step) = event { marks.withLock { $0.append((.now, step.durationMs)) } }
    })
    let start = ContinuousClock.now
    _ = try await loop.run()
    for problem in await episode.close() { print("agent: \(problem)") }
    var previous = start
    var overheads: [Double] = []
    for (instant, commandMs) in marks.withLock({ $0 }) {
        let stepMs = measure(previous, instant)
        overheads.append(max(0, stepMs - commandMs))
        previous = instant
    }
    return Array(overheads.dropFirst())  // the first step also pays for the header and prompt set-up
}

private func measure(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant) -> Double {
    let elapsed = to - from
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

