import WardenCore

/// Keeps the first `headLimit` and last `tailLimit` bytes of a stream and counts the rest, so
/// a command that floods its output never makes the harness buffer an unbounded amount.
struct OutputCapture {
    let headLimit: Int
    let tailLimit: Int
    private var head: [UInt8] = []
    private var tail: [UInt8] = []
    private(set) var totalBytes = 0

    init(headLimit: Int, tailLimit: Int) {
        self.headLimit = headLimit
        self.tailLimit = tailLimit
    }

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        totalBytes += bytes.count
        var rest = bytes
        if head.count < headLimit {
            let taken = rest.prefix(headLimit - head.count)
            head += taken
            rest = rest.dropFirst(taken.count)
        }
        guard !rest.isEmpty, tailLimit > 0 else { return }
        tail += rest.suffix(tailLimit)
        // Trim in batches: amortized constant work per byte.
        if tail.count > 2 * tailLimit { tail.removeFirst(tail.count - tailLimit) }
    }

    var captured: CapturedOutput {
        let keptTail = tail.suffix(tailLimit)
        let dropped = totalBytes - head.count - keptTail.count
        return CapturedOutput(
            head: String(decoding: head, as: UTF8.self),
            tail: String(decoding: keptTail, as: UTF8.self),
            totalBytes: totalBytes,
            droppedBytes: dropped
        )
    }
}

/// Finds the shell driver's end-of-command marker in a byte stream:
/// `\u{1e}NONCE:PAYLOAD:NONCE\u{1e}`. Bytes before the marker are the command's output.
/// The nonce is fresh for every command, so no output can imitate it by accident.
struct MarkerScanner {
    private let start: [UInt8]
    private let end: [UInt8]
    private var buffer: [UInt8]
    /// The marker's payload once it has been seen.
    private(set) var payload: String?
    /// Bytes that arrived after the marker (a background job's late output).
    var leftover: [UInt8] { payload == nil ? [] : buffer }

    /// Output larger than this between a start and an end token means the start was not ours.
    private static let maximumPayload = 64 * 1024

    init(nonce: String, carriedOver: [UInt8] = []) {
        start = [0x1e] + Array(nonce.utf8) + [0x3a]
        end = [0x3a] + Array(nonce.utf8) + [0x1e]
        buffer = carriedOver
    }

    /// Consumes bytes, passing on the ones that are certainly output.
    mutating func feed(_ bytes: ArraySlice<UInt8>, output: (ArraySlice<UInt8>) -> Void) {
        guard payload == nil else {
            buffer += bytes
            return
        }
        buffer += bytes
        var searchFrom = 0
        while true {
            guard let startIndex = Self.find(start, in: buffer, from: searchFrom) else {
                // Keep a possible partial start token at the end for the next read.
                let keep = min(buffer.count, start.count - 1)
                let emitCount = buffer.count - keep
                if emitCount > 0 {
                    output(buffer[0..<emitCount])
                    buffer.removeFirst(emitCount)
                }
                return
            }
            let payloadStart = startIndex + start.count
            if let endIndex = Self.find(end, in: buffer, from: payloadStart), endIndex - payloadStart <= Self.maximumPayload {
                if startIndex > 0 { output(buffer[0..<startIndex]) }
                payload = String(decoding: buffer[payloadStart..<endIndex], as: UTF8.self)
                buffer.removeFirst(endIndex + end.count)
                return
            }
            if buffer.count - payloadStart > Self.maximumPayload {
                searchFrom = startIndex + 1  // an imitation: treat it as output
                continue
            }
            // A marker may be arriving: emit what precedes it and wait for more bytes.
            if startIndex > 0 {
                output(buffer[0..<startIndex])
                buffer.removeFirst(startIndex)
            }
            return
        }
    }

    /// Everything still held back, for when the stream ends without a marker.
    mutating func flush(output: (ArraySlice<UInt8>) -> Void) {
        if payload == nil, !buffer.isEmpty {
            output(buffer[...])
            buffer.removeAll()
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard haystack.count - from >= needle.count, let first = needle.first else { return nil }
        var index = from
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var matched = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }
}
