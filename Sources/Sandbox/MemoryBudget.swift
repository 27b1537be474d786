import Foundation
import WardenCore

/// Keeps N concurrent workers from promising their jails more memory than the host has.
///
/// A worker holds its agent's jail while the attempt is scored, and scoring runs the set-up
/// jail and then the tests jail, so one worker can hold the agent's limit plus the larger of
/// the scoring limits at once.
public enum MemoryBudget {
    /// Jail limits below this are refused rather than fitted: builds and test runs fail there.
    public static let minimumJailMB = 512

    /// Memory the jails may share: the host's (MemTotal), or the harness's own memory cgroup
    /// limit when lower, less a tenth (at least 1 GiB) for the harness and the system.
    public static func availableBytes() -> UInt64 {
        var total = UInt64.max
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
           let kilobytes = UInt64(line.split(separator: " ").dropFirst().first ?? "") {
            total = kilobytes * 1024
        }
        if let home = CgroupPlacement.current.memory?.home {
            for file in ["/memory.max", "/memory.limit_in_bytes"] {
                if let text = try? String(contentsOfFile: home + file, encoding: .utf8),
                   let limit = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    total = min(total, limit)
                }
            }
        }
        guard total != .max else { return .max }
        return total - max(total / 10, min(total / 2, 1 << 30))
    }

    /// Scales every profile's `limits.memory_mb` by one factor so that `workers` workers, each
    /// holding an agent jail and the largest scoring jail, fit in `availableBytes`. Returns a
    /// note saying what was changed, nil when everything fit; throws when the fitted limits
    /// would fall under `minimumJailMB`, naming what to set instead.
    public static func fit(workers: Int, agent: inout SandboxProfile, scoring: inout [SandboxProfile],
                           availableBytes: UInt64) throws -> String? {
        let perWorkerMB = agent.limits.memoryMB + (scoring.map(\.limits.memoryMB).max() ?? 0)
        let neededMB = UInt64(workers) * UInt64(perWorkerMB)
        let availableMB = availableBytes >> 20
        guard neededMB > availableMB else { return nil }
        let factor = Double(availableMB) / Double(neededMB)
        func fitted(_ megabytes: Int) -> Int { Int((Double(megabytes) * factor).rounded(.down)) }
        let smallest = ([agent] + scoring).map { fitted($0.limits.memoryMB) }.min() ?? 0
        let profiles = ([agent] + scoring).map { "\($0.name) \($0.limits.memoryMB) MB" }.joined(separator: ", ")
        let demand = "\(workers) workers, each holding an agent jail and a scoring jail (\(profiles)), "
            + "would be promised \(neededMB) MB, more than the \(availableMB) MB this host can give jails"
        if smallest < minimumJailMB {
            throw WardenError("run.memory", "\(demand); fitting them would leave a jail under \(minimumJailMB) MB. "
                + "Use fewer --workers, or lower limits.memory_mb in those profiles")
        }
        agent.limits.memoryMB = fitted(agent.limits.memoryMB)
        for index in scoring.indices { scoring[index].limits.memoryMB = fitted(scoring[index].limits.memoryMB) }
        let now = ([agent] + scoring).map { "\($0.name) \($0.limits.memoryMB) MB" }.joined(separator: ", ")
        return "\(demand); each jail's memory limit is scaled to fit: \(now). "
            + "Set limits.memory_mb in the profiles, or use fewer --workers, to choose yourself"
    }
}
