import ArgumentParser
import WardenLog

/// `--log-level` and `--log-format`, for the commands that log (the `WARDEN_LOG` variable
/// gives both defaults: `debug`, `json` or `debug,json`).
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical (default notice; WARDEN_LOG).")
    var logLevel: String?

    @Option(name: .long, help: "text or json: one JSON object per line on stderr (WARDEN_LOG).")
    var logFormat: String?

    /// Installs the handler; call first in `run()`.
    func bootstrap(defaultLevel: String = "notice") throws {
        if let problem = WardenLogging.bootstrap(level: logLevel, format: logFormat, defaultLevel: defaultLevel) {
            throw ValidationError(problem)
        }
    }
}
