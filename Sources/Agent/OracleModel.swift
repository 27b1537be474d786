import Foundation
import Synchronization
import WardenCore

/// A model that solves a task carrying a gold patch: it writes the patch with bash, applies
/// it, and submits, in whatever protocol the episode uses. It exercises the whole pipeline
/// (prompt, parsing, jail, libgit2, trajectory, scoring) with no model server.
public final class OracleModel: ModelClient {
    public let name = "oracle"
    private let actions: [AgentAction]
    private let protocolHandler: any ActionProtocol
    private let next = Mutex(0)

    public init(goldPatch: String, protocol protocolHandler: any ActionProtocol) {
        self.protocolHandler = protocolHandler
        var delimiter = "WARDEN_ORACLE_EOF"
        while goldPatch.contains(delimiter) { delimiter += "_" }
        let body = goldPatch.hasSuffix("\n") ? String(goldPatch.dropLast()) : goldPatch
        let patchFile = "/tmp/warden-oracle.patch"
        actions = [
            .bash(command: "cat > \(patchFile) <<'\(delimiter)'\n\(body)\n\(delimiter)"),
            .bash(command: "git apply --verbose \(patchFile) || patch --batch --fuzz=5 -p1 < \(patchFile)"),
            .submit(path: nil),
        ]
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let index = next.withLock { value in
            defer { value += 1 }
            return value
        }
        guard index < actions.count else { throw ModelError(.exhausted, "the oracle has submitted already") }
        var response = protocolHandler.render(actions[index], callID: "oracle-\(index + 1)")
        response.model = name
        response.promptTokens = estimateTokens(request.messages)
        response.completionTokens = max(1, response.content.utf8.count / 4)
        return response
    }
}
