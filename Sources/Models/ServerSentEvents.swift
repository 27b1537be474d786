import Foundation

/// One event of a `text/event-stream` body: its type (`event:`, "message" when absent) and its
/// `data:` lines joined by newlines.
struct ServerSentEvent: Sendable, Equatable {
    var name: String
    var data: Data

    var text: String { String(decoding: data, as: UTF8.self) }
}

/// Splits a byte stream into server-sent events as the WHATWG event-stream rules say: lines end
/// in LF, CR or CRLF (a CRLF may be split between two reads), a blank line ends an event,
/// `data:` lines are joined with LF, one space after the colon is dropped, a leading BOM is
/// skipped, and `id:`, `retry:` and unknown fields are ignored (the client never reconnects).
///
/// Comment lines (`: keep-alive`) yield nothing, so they do not count as progress: the stall
/// timeout counts complete events only. Bytes after the last blank line stay pending; a stream
/// that ends there ends with an incomplete event, which is dropped, as the rules say.
///
/// A value type fed synchronously from the read loop: no actor hop per byte, no Foundation
/// networking. (mattt/EventSource has both, hence this parser.)
struct ServerSentEventParser {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var name: String?
    private var afterCR = false
    private var atStart = true

    private static let lf: UInt8 = 0x0A, cr: UInt8 = 0x0D, colon: UInt8 = 0x3A, space: UInt8 = 0x20

    /// Consumes `bytes` and appends every event they complete to `events`.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, into events: inout [ServerSentEvent]) {
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == Self.lf { continue }
            }
            if byte == Self.lf || byte == Self.cr {
                afterCR = byte == Self.cr
                endLine(into: &events)
            } else {
                line.append(byte)
            }
        }
    }

    /// Consumes `bytes` (tests and small inputs).
    mutating func feed(_ bytes: some Collection<UInt8>, into events: inout [ServerSentEvent]) {
        Array(bytes).withUnsafeBytes { feed($0, into: &events) }
    }

    private mutating func endLine(into events: inout [ServerSentEvent]) {
        defer { line.removeAll(keepingCapacity: true) }
        if atStart {
            atStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty {
            if hasData {
                events.append(ServerSentEvent(name: name ?? "message", data: Data(data)))
            }
            data.removeAll(keepingCapacity: true)
            hasData = false
            name = nil
            return
        }
        if line[0] == Self.colon { return }
        let field: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: Self.colon) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == Self.space { value = value.dropFirst() }
        } else {
            field = line[...]
            value = []
        }
        if field.elementsEqual("data".utf8) {
            if hasData { data.append(Self.lf) }
            data.append(contentsOf: value)
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            name = String(decoding: value, as: UTF8.self)
        }
    }
}
