import WardenCore

extension ChatMessage {
    /// The message in the OpenAI chat-completions shape (`tool_calls`, `tool_call_id`), as model
    /// servers and trainers read it.
    public var openAIValue: JSONValue { OpenAIWire.message(self) }
}
