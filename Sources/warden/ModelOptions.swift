import Agent
import ArgumentParser
import Foundation
import Logging
import Models
import WardenCore

/// `--model` and the sampling flags, turned into a model client.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "oracle, human, replay:FILE (a trajectory or a JSON list of responses), or openai:BASE_URL.")
    var model: String = "oracle"

    @Option(name: .long, help: "The model name sent to an OpenAI-compatible server.")
    var modelName: String?

    @Option(name: .long, help: "Sampling temperature.")
    var temperature: Double?

    @Option(name: .long, help: "Nucleus sampling top_p.")
    var topP: Double?

    @Option(name: .long, help: "Sampling seed.")
    var seed: Int?

    @Option(name: .long, help: "Stop sequence (repeatable).")
    var stop: [String] = []

    @Flag(name: .long, help: "Ask the server for token log-probabilities and record them.")
    var logprobs = false

    @Option(name: .long, help: "Seconds one model call may take, retries included.")
    var requestTimeout: Double = 900

    @Option(name: .long, help: "Seconds without a complete streamed event (with --no-stream: without the whole reply) before a call is retried.")
    var stallTimeout: Double = 60

    @Flag(name: .long, inversion: .prefixedNo, help: "Stream replies as server-sent events; --no-stream for servers that cannot.")
    var stream = true

    func validate() throws {
        let kind = model.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        guard ["oracle", "human", "replay", "openai"].contains(kind) else {
            throw ValidationError("--model must be oracle, human, replay:FILE or openai:BASE_URL, not \(model)")
        }
        if kind == "openai" && modelName == nil { throw ValidationError("--model openai:URL needs --model-name") }
    }

    /// A client for one episode. The oracle needs the task's gold patch.
    func makeClient(goldPatch: String?, protocol handler: any ActionProtocol) throws -> any ModelClient {
        let parts = model.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts[0] {
        case "oracle":
            guard let goldPatch, !goldPatch.isEmpty else {
                throw WardenError("model.oracle", "the oracle needs a gold patch: solve a suite task, or pass --gold-patch FILE")
            }
            return OracleModel(goldPatch: goldPatch, protocol: handler)
        case "human":
            return HumanClient()
        case "replay":
            guard parts.count == 2 else { throw WardenError("model.replay", "use --model replay:FILE") }
            return try ReplayClient.load(url: URL(fileURLWithPath: parts[1]))
        default:
            guard parts.count == 2 else { throw WardenError("model.openai", "use --model openai:BASE_URL, e.g. openai:http://127.0.0.1:8000/v1") }
            let configuration = OpenAIClient.Configuration(
                baseURL: parts[1], model: modelName ?? "default",
                apiKey: OpenAIClient.Configuration.apiKey(from: ProcessInfo.processInfo.environment),
                temperature: temperature, topP: topP, seed: seed, stop: stop, logprobs: logprobs,
                requestTimeout: requestTimeout, stallTimeout: stallTimeout, stream: stream)
            return try OpenAIClient(configuration: configuration)
        }
    }
}

/// Shuts an HTTP-backed client down; the others hold nothing.
func shutdown(_ client: any ModelClient) async {
    guard let client = client as? OpenAIClient else { return }
    do { try await client.shutdown() } catch {
        Logger(label: "warden").debug("the model client did not shut down cleanly", metadata: ["cause": "\(error)"])
    }
}
