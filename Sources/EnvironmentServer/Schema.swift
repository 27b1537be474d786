import WardenCore

/// `GET /schema`: JSON Schemas of the action, observation and state, as OpenEnv's
/// `SchemaResponse` has them.
enum Schema {
    static func object(_ properties: [String: JSONValue], required: [String] = []) -> JSONValue {
        .object(["type": .string("object"), "properties": .object(properties), "required": .array(required.map { .string($0) })])
    }

    static func type(_ name: String, _ description: String) -> JSONValue {
        .object(["type": .string(name), "description": .string(description)])
    }

    static let message = object([
        "role": type("string", "system, user, assistant or tool"),
        "content": type("string", "the message text"),
        "tool_calls": type("array", "native tool calls of an assistant message"),
        "tool_call_id": type("string", "the call a tool message answers"),
    ], required: ["role", "content"])

    static let document: JSONValue = .object([
        "action": object([
            "response": type("string", "the model's raw response text, parsed with the episode's protocol"),
            "tool_calls": type("array", "native tool calls ({id, type, function: {name, arguments}}), for the tools protocol"),
            "reasoning": type("string", "reasoning the sampler returned separately"),
            "model_version": type("string", "the policy version that produced the response"),
            "prompt_tokens": type("integer", "prompt tokens of the call"),
            "completion_tokens": type("integer", "completion tokens of the call"),
            "prompt_token_ids": type("array", "the prompt's token ids"),
            "completion_token_ids": type("array", "the completion's token ids"),
            "logprobs": type("array", "per-token log probabilities: [{token, logprob}]"),
        ]),
        "observation": object([
            "episode_id": type("string", "the episode, to address it over HTTP"),
            "messages": .object(["type": .string("array"), "items": message]),
            "tools": type("array", "the functions offered (tools protocol), at reset"),
            "step": type("integer", "the step just taken (0 at reset)"),
            "info": object([
                "exit_code": type("integer", "the action's exit code"),
                "format_error": type("string", "why the response could not be used"),
                "changes": type("array", "files the step changed: [{path, status}]"),
                "exit_status": type("string", "how the episode ended, when done"),
                "score": type("object", "resolved, resolution, FAIL_TO_PASS and PASS_TO_PASS counts, when scored"),
                "env_error": type("string", "a harness failure: drop the episode rather than punish the policy"),
            ]),
        ]),
        "state": object([
            "episode_id": type("string", "the episode"),
            "step_count": type("integer", "steps taken"),
            "task_id": type("string", "the task"),
            "done": type("boolean", "whether the episode has ended"),
            "exit_status": type("string", "how it ended"),
            "trajectory": type("string", "the trajectory file on the server"),
        ]),
    ])
}
