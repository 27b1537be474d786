import Agent
import EnvironmentServer
import Foundation
import HummingbirdWSClient
import Logging
import Sandbox
import Scoring
import Synchronization
import Tasks
import WardenCore

/// The environment server: a step over the WebSocket against the same step in-process, the
/// memory of 256 idle live episodes, and steps per second with 32 WebSocket clients at once.
func runServerBenchmarks() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-serve-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let tasks = Dictionary(uniqueKeysWithValues: try TaskSuite.load("Tasks/starter/warden__strutil-1", cache: root.appendingPathComponent("repos"))
        .tasks.map { ($0.instance.instanceID, $0) })
    var agent = try SandboxProfile.load("agent")
    agent.limits.memoryMB = 256
    let settings = ServerSettings(tasks: tasks, configuration: AgentConfiguration(), agentProfile: agent,
                                  evaluator: Evaluator(profile: try SandboxProfile.load("tests"), workRoot: root),
                                  output: root.appendingPathComponent("out"), workRoot: root, maxEpisodes: 300, wardenVersion: "bench")
    let registry = EpisodeRegistry(settings: settings, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
    let server = EnvironmentServer(registry: registry, port: 0, token: nil, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let serving = Task { try await server.run { continuation.yield($0) } }
    var portIterator = ports.makeAsyncIterator()
    guard let port = await portIterator.next() else { print("serve: the server did not start"); return }
    let probe = #"{"type": "step", "data": {"response": "<tool: bash>\ntrue\n</tool>"}}"#

    // 1. The same step in-process and through the server, alternating.
    let (_, local, _) = try await registry.open(ResetRequest(taskID: "warden__strutil-1"))
    let response = CWMProtocol().render(.bash(command: "true"), callID: "")
    let samples = Mutex<(inProcess: [Double], overSocket: [Double])>(([], []))
    try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws", logger: Logger(label: "bench")) { inbound, outbound, _ in
        var replies = inbound.messages(maxSize: 64 << 20).makeAsyncIterator()
        try await outbound.write(.text(#"{"type": "reset", "data": {"task_id": "warden__strutil-1", "limits": {"max_steps": 1000}}}"#))
        _ = try await replies.next()
        for round in 0..<120 {
            let started = ContinuousClock.now
            _ = try await local.step(response)
            let a = ContinuousClock.now - started
            let sent = ContinuousClock.now
            try await outbound.write(.text(probe))
            _ = try await replies.next()
            let b = ContinuousClock.now - sent
            if round >= 10 { samples.withLock { $0.inProcess.append(milliseconds(a)); $0.overSocket.append(milliseconds(b)) } }
        }
        try await outbound.write(.text(#"{"type": "close"}"#))
    }
    let (inProcess, overSocket) = samples.withLock { $0 }
    let (a, b) = (percentile(inProcess, 0.5), percentile(overSocket, 0.5))
    print("serve: one `true` step in-process median \(formatted(a, digits: 2)) ms, over the WebSocket \(formatted(b, digits: 2)) ms: "
        + "+\(formatted(b - a, digits: 2)) ms (target <= +1 ms), \(inProcess.count) alternating rounds")

    // 2. 256 idle live episodes, each with a started shell: the harness's growth plus every jail process's PSS.
    let before = residentKilobytes(getpid())
    var ids: [String] = []
    for _ in 0..<256 {
        let (id, episode, _) = try await registry.open(ResetRequest(taskID: "warden__strutil-1"))
        _ = try await episode.step(response)
        ids.append(id)
    }
    let harness = residentKilobytes(getpid()) - before
    let jails = descendants(of: getpid()).reduce(0) { $0 + proportionalKilobytes($1) }
    print("serve: 256 idle live episodes: harness +\(formatted(Double(harness) / 1024, digits: 0)) MB, jail processes \(formatted(Double(jails) / 1024, digits: 0)) MB PSS, "
        + "total \(formatted(Double(harness + jails) / 1024, digits: 0)) MB (target <= 1024 MB)")
    for id in ids { await registry.close(id) }

    // 3. Steps per second with 32 WebSocket clients, 30 steps each.
    let started = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<32 {
            group.addTask {
                try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws", logger: Logger(label: "bench")) { inbound, outbound, _ in
                    var replies = inbound.messages(maxSize: 64 << 20).makeAsyncIterator()
                    try await outbound.write(.text(#"{"type": "reset", "data": {"task_id": "warden__strutil-1"}}"#))
                    _ = try await replies.next()
                    for _ in 0..<30 {
                        try await outbound.write(.text(probe))
                        _ = try await replies.next()
                    }
                    try await outbound.write(.text(#"{"type": "close"}"#))
                }
            }
        }
        try await group.waitForAll()
    }
    let seconds = milliseconds(ContinuousClock.now - started) / 1000
    print("serve: 32 WebSocket clients x 30 steps: \(formatted(960 / seconds, digits: 0)) steps/s on \(ProcessInfo.processInfo.activeProcessorCount) cores "
        + "(including 32 resets: checkout, tracker, jail)")
    serving.cancel()
    _ = await serving.result
}

private func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

private func residentKilobytes(_ pid: pid_t) -> Int {
    field("VmRSS:", in: "/proc/\(pid)/status")
}

private func proportionalKilobytes(_ pid: pid_t) -> Int {
    field("Pss:", in: "/proc/\(pid)/smaps_rollup")
}

private func field(_ name: String, in path: String) -> Int {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
}

/// Every process below `pid`, found through /proc/PID/task/*/children.
private func descendants(of pid: pid_t) -> [pid_t] {
    var result: [pid_t] = [], pending = [pid]
    while let next = pending.popLast() {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(next)/task")) ?? []
        for task in tasks {
            let children = (try? String(contentsOfFile: "/proc/\(next)/task/\(task)/children", encoding: .utf8)) ?? ""
            for child in children.split(separator: " ").compactMap({ pid_t($0) }) {
                result.append(child)
                pending.append(child)
            }
        }
    }
    return result
}
