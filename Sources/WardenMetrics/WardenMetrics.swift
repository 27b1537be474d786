import Agent
import CoreMetrics
import Foundation
import Prometheus
import Synchronization
import WardenCore

/// Warden's live metrics in Prometheus's text format: episodes started and finished (by exit
/// status), step latency split into model, command and harness, jail start time, queue depth and
/// the resolved rate. Episodes report through `EpisodeObserver`; the registry is this object's
/// own (no global bootstrap), so tests and several runs in one process do not share counters.
public final class WardenMetrics: EpisodeObserver {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let started: CoreMetrics.Counter
    private let modelLatency: CoreMetrics.Timer, commandLatency: CoreMetrics.Timer, harnessLatency: CoreMetrics.Timer
    private let jailStart: CoreMetrics.Timer
    private let queue: CoreMetrics.Gauge, resolvedRate: CoreMetrics.Gauge
    /// Finished and resolved among the scored episodes, for the rate.
    private let scored = Mutex((finished: 0, resolved: 0))

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250),
                                   .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10), .seconds(30), .seconds(120)]
        factory.defaultDurationHistogramBuckets = buckets
        self.factory = factory
        started = Counter(label: "warden_episodes_started_total", factory: factory)
        modelLatency = Timer(label: "warden_step_seconds", dimensions: [("part", "model")], factory: factory)
        commandLatency = Timer(label: "warden_step_seconds", dimensions: [("part", "command")], factory: factory)
        harnessLatency = Timer(label: "warden_step_seconds", dimensions: [("part", "harness")], factory: factory)
        jailStart = Timer(label: "warden_jail_start_seconds", factory: factory)
        queue = CoreMetrics.Gauge(label: "warden_queue_depth", factory: factory)
        resolvedRate = CoreMetrics.Gauge(label: "warden_resolved_rate", factory: factory)
    }

    public func jailStarted(seconds: Double) { jailStart.recordNanoseconds(Int64(seconds * 1e9)) }

    public func episodeStarted() { started.increment() }

    public func stepFinished(modelSeconds: Double, commandSeconds: Double, harnessSeconds: Double) {
        modelLatency.recordNanoseconds(Int64(modelSeconds * 1e9))
        commandLatency.recordNanoseconds(Int64(commandSeconds * 1e9))
        harnessLatency.recordNanoseconds(Int64(harnessSeconds * 1e9))
    }

    public func episodeFinished(_ status: EpisodeExitStatus, resolved: Bool?) {
        Counter(label: "warden_episodes_finished_total", dimensions: [("status", status.rawValue)], factory: factory).increment()
        guard let resolved else { return }
        let rate = scored.withLock { counts in
            counts.finished += 1
            if resolved { counts.resolved += 1 }
            return Double(counts.resolved) / Double(counts.finished)
        }
        resolvedRate.record(rate)
    }

    /// Attempts of a batch run waiting for a worker.
    public func setQueueDepth(_ depth: Int) { queue.record(depth) }

    /// The scrape: every metric in Prometheus's text exposition format.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}
