import ArgumentParser
import Foundation
import Runs
import WardenMetrics

/// `--metrics-port`, for the commands that run episodes.
struct MetricsOptions: ParsableArguments {
    @Option(name: .long, help: "Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while the command runs (0: any free port, printed).")
    var metricsPort: Int?

    /// Starts the endpoint when asked for, and says where it is.
    func start(command: String) throws -> (metrics: WardenMetrics, server: MetricsServer)? {
        guard let metricsPort else { return nil }
        let metrics = WardenMetrics()
        let server = try MetricsServer(port: metricsPort, metrics: metrics)
        writeStandardError("\(command): metrics on http://127.0.0.1:\(server.port)/metrics\n")
        return (metrics, server)
    }
}

extension WardenMetrics {
    /// Keeps the queue-depth gauge at the run's attempts that wait for a worker, until cancelled.
    func followQueue(of progress: RunProgress) async {
        while !Task.isCancelled {
            let snapshot = progress.snapshot
            setQueueDepth(max(0, snapshot.total - snapshot.done - snapshot.workers.count))
            do { try await Task.sleep(for: .milliseconds(500)) } catch { return }
        }
    }
}
