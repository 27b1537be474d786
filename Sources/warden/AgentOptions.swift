import Agent
import ArgumentParser
import Foundation

/// `--config` and the flags that override it, shared by `solve` and `run`.
struct AgentOptions: ParsableArguments {
    @Option(name: .long, help: "A JSON agent configuration file (limits, protocol, templates, profile).")
    var config: String?

    @Option(name: .long, help: "Action protocol: cwm, tools or fenced (default: the configuration's, cwm).")
    var `protocol`: ProtocolName?

    @Option(name: .long, help: "Sandbox profile for the agent's commands (default: the configuration's, agent).")
    var profile: String?

    @Option(name: .long, help: "Maximum model turns.")
    var maxSteps: Int?

    /// The configuration file (or the defaults) with the flags applied, and its protocol.
    func resolve() throws -> (AgentConfiguration, any ActionProtocol) {
        var configuration = try config.map { try AgentConfiguration.load(URL(fileURLWithPath: $0)) } ?? AgentConfiguration()
        if let value = `protocol` { configuration.protocol = value }
        if let value = profile { configuration.sandboxProfile = value }
        if let value = maxSteps { configuration.limits.maxSteps = value }
        return (configuration, configuration.protocol.handler)
    }
}

extension ProtocolName: ExpressibleByArgument {}
