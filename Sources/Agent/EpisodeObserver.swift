import WardenCore

/// Told what episodes do as they run, for live metrics; Agent stays free of any metrics library
/// (WardenMetrics implements this). Calls come from the episode's own tasks and threads, so an
/// observer must be cheap and thread-safe.
public protocol EpisodeObserver: Sendable {
    /// The episode's jail started, after `seconds`.
    func jailStarted(seconds: Double)
    /// The episode is ready for its first model call.
    func episodeStarted()
    /// A step was recorded: the model call, the action's command, and the harness's own time
    /// (parsing, tracking, writing the trajectory).
    func stepFinished(modelSeconds: Double, commandSeconds: Double, harnessSeconds: Double)
    func episodeFinished(_ status: EpisodeExitStatus, resolved: Bool?)
}

/// Seconds from `instant` to now.
func seconds(since instant: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - instant
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
