import Foundation
import Synchronization
import WardenCore

/// A person answers each turn at the terminal.
///
/// Shows the messages it has not shown yet (normally the latest observation) on stderr, then
/// reads lines until one holding only `.`; end of input throws `ModelError.exhausted`.
/// `readLine` blocks its thread while waiting, which is fine for a single interactive episode.
public final class HumanClient: ModelClient {
    public let name = "human"
    private let input: @Sendable () -> String?
    private let output: @Sendable (String) -> Void
    /// How many messages of the conversation have been shown, and what the person last typed.
    private let state = Mutex<(shown: Int, lastReply: String?)>((0, nil))

    /// - Parameters:
    ///   - input: returns the next line without its newline, or nil at end of input.
    ///   - output: writes text as is (no newline added).
    public init(
        input: @escaping @Sendable () -> String? = { readLine(strippingNewline: true) },
        output: @escaping @Sendable (String) -> Void = { text in
            FileHandle.standardError.write(Data(text.utf8))
        }
    ) {
        self.input = input
        self.output = output
    }

    public func complete(_ request: ModelRequest) async throws -> ModelResponse {
        let start = ContinuousClock.now
        let (shown, lastReply) = state.withLock { $0 }
        // A shorter conversation than the one shown means a new episode: show it all.
        let from = shown <= request.messages.count ? shown : 0
        var text = ""
        for message in request.messages[from...] {
            // The person's own last answer comes back as the assistant message; skip the echo.
            if message.role == .assistant, message.content == lastReply { continue }
            text += "----- \(message.role.rawValue)\(message.name.map { " (\($0))" } ?? "") -----\n"
            text += message.content
            if !message.content.hasSuffix("\n") { text += "\n" }
        }
        text += "----- your response (end with a line holding only \".\") -----\n"
        output(text)

        var lines: [String] = []
        while true {
            if Task.isCancelled { throw ModelError(.cancelled, "the turn was cancelled") }
            guard let line = input() else {
                throw ModelError(.exhausted, "end of input before a line holding only \".\"")
            }
            if line == "." { break }
            lines.append(line)
        }
        let content = lines.joined(separator: "\n")
        state.withLock { $0 = (request.messages.count, content) }
        let elapsed = ContinuousClock.now - start
        return ModelResponse(content: content, latencyMs: OpenAIClient.milliseconds(elapsed))
    }
}
