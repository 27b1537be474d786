import Foundation
import Models
import WardenCore

/// The OpenAI client's own cost per call, streamed against not streamed: 20-call episodes (the
/// conversation grows by a reply and an observation per call) against a loopback server that
/// answers at once with the same logical reply, about 100 tokens sent one token per event as
/// vLLM does. The two modes alternate round by round so drift hits both alike.
func runModelBenchmarks(rounds: Int = 15) async throws {
    let pieces = benchReplyTokens()
    let server = try CannedChatServer(pieces: pieces)
    defer { server.stop() }
    let base = OpenAIClient.Configuration(baseURL: "http://127.0.0.1:\(server.port)/v1", model: "bench-model")
    var unstreamed = base
    unstreamed.stream = false

    try await OpenAIClient.withClient(base) { streamedClient in
        try await OpenAIClient.withClient(unstreamed) { plainClient in
            // Warm-up: connections, allocator, caches. Both replies must be the same reply.
            let a = try await episode(streamedClient, calls: 3, check: pieces.joined()).last
            let b = try await episode(plainClient, calls: 3, check: pieces.joined()).last
            guard let a, let b, a.content == b.content, a.completionTokens == b.completionTokens, a.model == b.model else {
                throw WardenError("bench.model", "the streamed and non-streamed replies differ")
            }
            let (streamed, plain, connections) = try await alternatingLatencies(streamedClient, plainClient, rounds: rounds, server: server)
            let s = percentile(streamed, 0.5), p = percentile(plain, 0.5)
            print("model: 20-call episodes on loopback, \(streamed.count) calls each way, \(pieces.count + 4) events per streamed reply:")
            print("model:   not streamed median \(formatted(p)) ms, p95 \(formatted(percentile(plain, 0.95))) ms")
            print("model:   streamed     median \(formatted(s)) ms, p95 \(formatted(percentile(streamed, 0.95))) ms")
            print("model:   streaming adds \(formatted(s - p)) ms per call at the median, ratio \(formatted(s / p, digits: 2)) "
                + "(target: <= 0.2 ms); new connections in the timed calls: \(connections.streamed) streamed, \(connections.plain) not")
        }
    }
    try await pacedModelBenchmark(pieces: pieces)
}

/// The benchmark's calls in one mode only, 200 episodes of 20, for a profiler to compare the
/// modes: `perf record warden-bench model-streamed`, then `model-plain`.
func profileModelCalls(streaming: Bool) async throws {
    let server = try CannedChatServer(pieces: benchReplyTokens())
    defer { server.stop() }
    var configuration = OpenAIClient.Configuration(baseURL: "http://127.0.0.1:\(server.port)/v1", model: "bench-model")
    configuration.stream = streaming
    try await OpenAIClient.withClient(configuration) { client in
        var latencies: [Double] = []
        for _ in 0..<200 { latencies += try await episode(client, calls: 20).map(\.latencyMs) }
        print("model: \(streaming ? "streamed" : "not streamed") median \(formatted(percentile(latencies, 0.5))) ms over \(latencies.count) calls")
    }
}

/// The same calls against a server that generates: an event every 500 µs (2,000 tokens/s, far
/// faster than one sequence on a real server), the non-streamed reply after as long. Parsing
/// then overlaps generation, and what streaming adds is the handling of the last events.
private func pacedModelBenchmark(pieces: [String], rounds: Int = 4) async throws {
    let gap: UInt32 = 500
    let server = try CannedChatServer(pieces: pieces, gapMicroseconds: gap)
    defer { server.stop() }
    let base = OpenAIClient.Configuration(baseURL: "http://127.0.0.1:\(server.port)/v1", model: "bench-model")
    var unstreamed = base
    unstreamed.stream = false
    try await OpenAIClient.withClient(base) { streamedClient in
        try await OpenAIClient.withClient(unstreamed) { plainClient in
            _ = try await episode(streamedClient, calls: 2)
            _ = try await episode(plainClient, calls: 2)
            let (streamed, plain, _) = try await alternatingLatencies(streamedClient, plainClient, rounds: rounds, server: server)
            let s = percentile(streamed, 0.5), p = percentile(plain, 0.5)
            print("model: paced server (an event every \(gap) µs, \(pieces.count + 4) events), \(streamed.count) calls each way: "
                + "not streamed \(formatted(p)) ms, streamed \(formatted(s)) ms median; streaming adds \(formatted(s - p)) ms per call")
        }
    }
}

/// Per-call latencies of `rounds` 20-call episodes each way, and the connections each way
/// opened (a kept-alive client opens none once warm); the two modes alternate round by round
/// so drift hits both alike.
private func alternatingLatencies(_ streamedClient: OpenAIClient, _ plainClient: OpenAIClient, rounds: Int,
                                  server: CannedChatServer) async throws
    -> (streamed: [Double], plain: [Double], connections: (streamed: Int, plain: Int)) {
    var streamed: [Double] = [], plain: [Double] = [], connections = (streamed: 0, plain: 0)
    for round in 0..<rounds {
        for streaming in round % 2 == 0 ? [true, false] : [false, true] {
            let before = server.connections
            if streaming {
                streamed += try await episode(streamedClient, calls: 20).map(\.latencyMs)
                connections.streamed += server.connections - before
            } else {
                plain += try await episode(plainClient, calls: 20).map(\.latencyMs)
                connections.plain += server.connections - before
            }
        }
    }
    return (streamed, plain, connections)
}

/// One episode's calls; the conversation grows as the agent loop grows it.
private func episode(_ client: OpenAIClient, calls: Int, check: String? = nil) async throws -> [ModelResponse] {
    var messages = [
        ChatMessage(role: .system, content: String(repeating: "You are a careful software engineer. ", count: 40)),
        ChatMessage(role: .user, content: String(repeating: "The add function subtracts. Fix it. ", count: 30)),
    ]
    var responses: [ModelResponse] = []
    for step in 0..<calls {
        let response = try await client.complete(ModelRequest(messages: messages, maxTokens: 4096))
        if let check, response.content != check {
            throw WardenError("bench.model", "unexpected reply: \(response.content.prefix(80))")
        }
        responses.append(response)
        messages.append(ChatMessage(role: .assistant, content: response.content))
        messages.append(ChatMessage(role: .user, content: "<output step=\(step)>\n" + String(repeating: "src/calc.py:2: return a - b\n", count: 20)))
    }
    return responses
}

/// A CWM-style reply (reasoning, then one bash tool call) cut into pieces of about 4 bytes.
private func benchReplyTokens() -> [String] {
    let reply = """
    <think>
    The test fails because add() returns a - b. I should look at src/calc.py, confirm the \
    operator, then fix it and run the tests again before I submit the patch.
    </think>
    Let me look at the implementation first.
    <tool: bash>
    grep -n "def add" -A 3 src/calc.py && python3 -m pytest -q tests/test_calc.py
    </tool>
    """
    var pieces: [String] = [], current = ""
    for character in reply {
        current.append(character)
        if current.utf8.count >= 4 || character == " " || character == "\n" {
            pieces.append(current)
            current = ""
        }
    }
    if !current.isEmpty { pieces.append(current) }
    return pieces
}

/// A minimal HTTP/1.1 server on 127.0.0.1 for this benchmark: a thread per connection,
/// keep-alive, every request answered at once with the same reply, as an event stream when the
/// request asks for `"stream":true` and as one JSON body otherwise. (The tests' NIO server is in
/// the test target; the benchmark needs no more than this.)
private final class CannedChatServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let json: [UInt8]
    private let stream: [UInt8]
    /// The stream's chunks one by one, for the paced mode.
    private let frames: [[UInt8]]
    /// Microseconds between events (0: everything at once). A non-streamed reply waits as long
    /// as the whole stream would, as a server does while it generates.
    private let gapMicroseconds: UInt32
    private let accepted = NSLock()
    private var acceptedCount = 0

    var connections: Int { accepted.withLock { acceptedCount } }

    init(pieces: [String], gapMicroseconds: UInt32 = 0) throws {
        self.gapMicroseconds = gapMicroseconds
        let model = "bench-model"
        func quoted(_ text: String) -> String {
            String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        let usage = #""usage": {"prompt_tokens": 900, "completion_tokens": \#(pieces.count), "total_tokens": \#(900 + pieces.count)}"#
        json = Array(("""
        {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "\(model)", \
        "choices": [{"index": 0, "message": {"role": "assistant", "content": \(quoted(pieces.joined()))}, \
        "logprobs": null, "finish_reason": "stop"}], \(usage)}
        """).utf8)
        func chunk(_ delta: String, finish: String = "null") -> String {
            #"{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "\#(model)", "#
                + #""choices": [{"index": 0, "delta": \#(delta), "logprobs": null, "finish_reason": \#(finish)}]}"#
        }
        var events = [chunk(#"{"role": "assistant", "content": ""}"#)]
        events += pieces.map { chunk(#"{"content": \#(quoted($0))}"#) }
        events.append(chunk("{}", finish: #""stop""#))
        events.append(#"{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "\#(model)", "choices": [], \#(usage)}"#)
        events.append("[DONE]")
        // Chunked framing, one chunk per event, written at once: the server costs nothing here.
        var chunks: [[UInt8]] = []
        for event in events {
            let frame = "data: \(event)\n\n"
            chunks.append(Array((String(frame.utf8.count, radix: 16) + "\r\n" + frame + "\r\n").utf8))
        }
        chunks.append(Array("0\r\n\r\n".utf8))
        frames = chunks
        stream = chunks.flatMap { $0 }

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WardenError("bench.model", "socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(fd, generic, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, generic, &length) == 0
            }
        }
        guard bound else { throw WardenError("bench.model", "bind/listen: \(String(cString: strerror(errno)))") }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var yes: Int32 = 1
            setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
            accepted.withLock { acceptedCount += 1 }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let headerEnd: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            // One request: the head, then Content-Length bytes of body.
            var head: Range<Int>?
            while head == nil {
                head = Self.find(headerEnd, in: pending[...])
                if head != nil { break }
                let n = read(connection, &chunk, chunk.count)
                guard n > 0 else { return }
                pending += chunk[0..<n]
            }
            guard let head else { return }
            let headText = String(decoding: pending[..<head.lowerBound], as: UTF8.self).lowercased()
            let lengthLine = headText.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            let bodyLength = lengthLine.flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            while pending.count < head.upperBound + bodyLength {
                let n = read(connection, &chunk, chunk.count)
                guard n > 0 else { return }
                pending += chunk[0..<n]
            }
            let body = pending[head.upperBound..<(head.upperBound + bodyLength)]
            let wantsStream = Self.find(Array(#""stream":true"#.utf8), in: body) != nil
            pending.removeFirst(head.upperBound + bodyLength)
            let streamHead = Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            let jsonReply = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(json.count)\r\n\r\n".utf8) + json
            if gapMicroseconds == 0 {
                guard send(wantsStream ? streamHead + stream : jsonReply, on: connection) else { return }
            } else if wantsStream {
                // Absolute deadlines, so both modes take the same generation time (a sleep per
                // event would add its own overshoot each time).
                let start = Self.now()
                guard send(streamHead, on: connection) else { return }
                for (index, frame) in frames.enumerated() {
                    Self.sleep(until: start + UInt64(index + 1) * UInt64(gapMicroseconds) * 1000)
                    guard send(frame, on: connection) else { return }
                }
            } else {
                Self.sleep(until: Self.now() + UInt64(frames.count) * UInt64(gapMicroseconds) * 1000)
                guard send(jsonReply, on: connection) else { return }
            }
        }
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private static func sleep(until deadline: UInt64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil) == EINTR {}
    }

    private func send(_ bytes: [UInt8], on connection: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Where `needle` first occurs in `haystack`, by a plain loop over the bytes (the generic
    /// `firstRange` made this server the benchmark's busiest thread).
    private static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Range<Int>? {
        haystack.withUnsafeBufferPointer { hay -> Range<Int>? in
            guard needle.count <= hay.count, let first = needle.first else { return nil }
            var index = 0
            while index <= hay.count - needle.count {
                if hay[index] == first, needle.indices.allSatisfy({ hay[index + $0] == needle[$0] }) {
                    return (haystack.startIndex + index)..<(haystack.startIndex + index + needle.count)
                }
                index += 1
            }
            return nil
        }
    }
}
