import WardenCore

extension OpenAIClient {
    /// How to reach an OpenAI-compatible chat-completions endpoint and how hard to try.
    ///
    /// Replies are streamed by default, so the stall timeout only has to exceed the longest gap
    /// between two events (a queued request sends none until it is scheduled). With `stream`
    /// off the whole reply is one event: `stallTimeout` must then exceed the longest generation.
    ///
    /// With the defaults a server that never answers, or dribbles bytes, fails the turn after
    /// `maxStalls` stalls: 3 x 60 s; with connect timeouts and back-off between them at most
    /// 3 x 60 + 3 x 10 + 28 = 238 s, under 4 minutes. Only `requestTimeout` bounds `Retry-After`
    /// waits, error replies that each arrive just inside the stall timeout, and a server that
    /// keeps sending complete but useless events.
    public struct Configuration: Sendable {
        /// The API root, e.g. `http://127.0.0.1:8000/v1`; requests go to `{baseURL}/chat/completions`.
        public var baseURL: String
        /// The model name sent as `model`.
        public var model: String
        /// Sent as `Authorization: Bearer ...`; never logged, never in `name` or in errors.
        public var apiKey: String?
        public var temperature: Double?
        public var topP: Double?
        /// Default cap on generated tokens; `ModelRequest.maxTokens` overrides it.
        public var maxTokens: Int?
        public var seed: Int?
        public var stop: [String]
        /// Ask for the sampled tokens' log-probabilities (`logprobs: true, top_logprobs: 0`).
        public var logprobs: Bool
        /// Wall-clock cap on one turn, retries and back-off waits included.
        public var requestTimeout: Double
        /// Seconds without a complete event (comments and partial events do not count) before
        /// the attempt is abandoned and retried.
        public var stallTimeout: Double
        /// Seconds to establish a connection.
        public var connectTimeout: Double
        /// Retries after the first attempt (so at most `maxRetries + 1` HTTP attempts).
        public var maxRetries: Int
        /// Stalled attempts after which the turn fails, whatever `maxRetries` allows.
        public var maxStalls: Int
        /// Ask for server-sent events (`stream: true` with usage in the last chunk); off for
        /// servers that cannot stream.
        public var stream: Bool
        /// First back-off wait in seconds; doubles per retry up to `backoffMax`, with jitter.
        public var backoffBase: Double
        public var backoffMax: Double
        /// The longest `Retry-After` the client honours, in seconds.
        public var retryAfterCap: Double
        /// Extra fields merged into the request body last (e.g. `chat_template_kwargs`, `top_k`).
        public var extraBody: [String: JSONValue]
        /// Cap on a response body's size in bytes.
        public var maxResponseBytes: Int

        public init(
            baseURL: String = "http://127.0.0.1:8000/v1",
            model: String = "default",
            apiKey: String? = nil,
            temperature: Double? = nil,
            topP: Double? = nil,
            maxTokens: Int? = nil,
            seed: Int? = nil,
            stop: [String] = [],
            logprobs: Bool = false,
            requestTimeout: Double = 900,
            stallTimeout: Double = 60,
            connectTimeout: Double = 10,
            maxRetries: Int = 5,
            maxStalls: Int = 3,
            stream: Bool = true,
            backoffBase: Double = 1,
            backoffMax: Double = 60,
            retryAfterCap: Double = 120,
            extraBody: [String: JSONValue] = [:],
            maxResponseBytes: Int = 64 << 20
        ) {
            self.baseURL = baseURL
            self.model = model
            self.apiKey = apiKey
            self.temperature = temperature
            self.topP = topP
            self.maxTokens = maxTokens
            self.seed = seed
            self.stop = stop
            self.logprobs = logprobs
            self.requestTimeout = requestTimeout
            self.stallTimeout = stallTimeout
            self.connectTimeout = connectTimeout
            self.maxRetries = maxRetries
            self.maxStalls = maxStalls
            self.stream = stream
            self.backoffBase = backoffBase
            self.backoffMax = backoffMax
            self.retryAfterCap = retryAfterCap
            self.extraBody = extraBody
            self.maxResponseBytes = maxResponseBytes
        }

        /// The API key from `WARDEN_API_KEY`, else `OPENAI_API_KEY`; empty values count as unset.
        ///
        /// Pass `ProcessInfo.processInfo.environment` in production and a literal in tests.
        public static func apiKey(from environment: [String: String]) -> String? {
            for variable in ["WARDEN_API_KEY", "OPENAI_API_KEY"] {
                if let value = environment[variable]?.trimmingWhitespace(), !value.isEmpty { return value }
            }
            return nil
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

/// Saved with each run as the effective configuration. The API key is never encoded nor
/// decoded: it comes from the environment. Missing keys decode to the defaults.
extension OpenAIClient.Configuration: Codable {
    private enum CodingKeys: String, CodingKey {
        case baseURL, model, temperature, topP, maxTokens, seed, stop, logprobs, requestTimeout, stallTimeout,
             connectTimeout, maxRetries, maxStalls, stream, backoffBase, backoffMax, retryAfterCap, extraBody, maxResponseBytes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        self.init(
            baseURL: try c.decodeIfPresent(String.self, forKey: .baseURL) ?? d.baseURL,
            model: try c.decodeIfPresent(String.self, forKey: .model) ?? d.model,
            apiKey: nil,
            temperature: try c.decodeIfPresent(Double.self, forKey: .temperature),
            topP: try c.decodeIfPresent(Double.self, forKey: .topP),
            maxTokens: try c.decodeIfPresent(Int.self, forKey: .maxTokens),
            seed: try c.decodeIfPresent(Int.self, forKey: .seed),
            stop: try c.decodeIfPresent([String].self, forKey: .stop) ?? d.stop,
            logprobs: try c.decodeIfPresent(Bool.self, forKey: .logprobs) ?? d.logprobs,
            requestTimeout: try c.decodeIfPresent(Double.self, forKey: .requestTimeout) ?? d.requestTimeout,
            stallTimeout: try c.decodeIfPresent(Double.self, forKey: .stallTimeout) ?? d.stallTimeout,
            connectTimeout: try c.decodeIfPresent(Double.self, forKey: .connectTimeout) ?? d.connectTimeout,
            maxRetries: try c.decodeIfPresent(Int.self, forKey: .maxRetries) ?? d.maxRetries,
            maxStalls: try c.decodeIfPresent(Int.self, forKey: .maxStalls) ?? d.maxStalls,
            stream: try c.decodeIfPresent(Bool.self, forKey: .stream) ?? d.stream,
            backoffBase: try c.decodeIfPresent(Double.self, forKey: .backoffBase) ?? d.backoffBase,
            backoffMax: try c.decodeIfPresent(Double.self, forKey: .backoffMax) ?? d.backoffMax,
            retryAfterCap: try c.decodeIfPresent(Double.self, forKey: .retryAfterCap) ?? d.retryAfterCap,
            extraBody: try c.decodeIfPresent([String: JSONValue].self, forKey: .extraBody) ?? d.extraBody,
            maxResponseBytes: try c.decodeIfPresent(Int.self, forKey: .maxResponseBytes) ?? d.maxResponseBytes
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(baseURL, forKey: .baseURL)
        try c.encode(model, forKey: .model)
        try c.encodeIfPresent(temperature, forKey: .temperature)
        try c.encodeIfPresent(topP, forKey: .topP)
        try c.encodeIfPresent(maxTokens, forKey: .maxTokens)
        try c.encodeIfPresent(seed, forKey: .seed)
        try c.encode(stop, forKey: .stop)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(requestTimeout, forKey: .requestTimeout)
        try c.encode(stallTimeout, forKey: .stallTimeout)
        try c.encode(connectTimeout, forKey: .connectTimeout)
        try c.encode(maxRetries, forKey: .maxRetries)
        try c.encode(maxStalls, forKey: .maxStalls)
        try c.encode(stream, forKey: .stream)
        try c.encode(backoffBase, forKey: .backoffBase)
        try c.encode(backoffMax, forKey: .backoffMax)
        try c.encode(retryAfterCap, forKey: .retryAfterCap)
        try c.encode(extraBody, forKey: .extraBody)
        try c.encode(maxResponseBytes, forKey: .maxResponseBytes)
    }
}

/// Printing or dumping a configuration shows whether a key is set, never the key.
extension OpenAIClient.Configuration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "OpenAIClient.Configuration(baseURL: \(baseURL), model: \(model), apiKey: \(apiKey == nil ? "none" : "<redacted>"))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "baseURL": baseURL, "model": model, "apiKey": apiKey == nil ? "none" : "<redacted>",
            "temperature": temperature as Any, "topP": topP as Any, "maxTokens": maxTokens as Any, "seed": seed as Any,
            "stop": stop, "logprobs": logprobs, "requestTimeout": requestTimeout, "stallTimeout": stallTimeout,
            "connectTimeout": connectTimeout, "maxRetries": maxRetries, "maxStalls": maxStalls, "stream": stream,
            "backoffBase": backoffBase,
            "backoffMax": backoffMax, "retryAfterCap": retryAfterCap, "extraBody": extraBody,
            "maxResponseBytes": maxResponseBytes,
        ])
    }
}
