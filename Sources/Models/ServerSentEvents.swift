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
/// networking. (mattt/EventSource has both, hence this parser.) An event whose one `data:` line
/// lies whole in the bytes being fed is handed over in place, without a copy.
struct ServerSentEventParser {
    /// A line begun in an earlier feed.
    private var line: [UInt8] = []
    /// The event's data when it has several lines or began in an earlier feed.
    private var data: [UInt8] = []
    /// The event's only data line so far, still inside the bytes being fed.
    private var borrowed: UnsafeRawBufferPointer?
    private var hasData = false
    private var name: String?
    private var afterCR = false
    private var atStart = true

    private static let lf: UInt8 = 0x0A, cr: UInt8 = 0x0D, colon: UInt8 = 0x3A, space: UInt8 = 0x20

    /// Consumes `bytes`, calling `onEvent` with the name and data of every event they complete.
    /// The data is valid only during the call.
    mutating func feed<E: Error>(
        _ bytes: UnsafeRawBufferPointer, _ onEvent: (String, UnsafeRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        // Data borrowed from `bytes` must be copied before they go away.
        defer {
            if let pending = borrowed {
                data.append(contentsOf: pending)
                borrowed = nil
            }
        }
        let count = bytes.count
        var index = 0
        while index < count {
            if afterCR {
                afterCR = false
                if bytes[index] == Self.lf {
                    index += 1
                    continue
                }
            }
            let end = Self.lineEnd(bytes, from: index)
            if end == count {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<count]))
                return
            }
            afterCR = bytes[end] == Self.cr
            if line.isEmpty {
                try endLine(UnsafeRawBufferPointer(rebasing: bytes[index..<end]), inFeed: true, onEvent)
            } else {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                var carried: [UInt8] = []
                swap(&carried, &line)
                let ended = carried.withUnsafeBytes { whole in
                    Result { () throws(E) in try endLine(whole, inFeed: false, onEvent) }
                }
                try ended.get()
                carried.removeAll(keepingCapacity: true)
                swap(&carried, &line)
            }
            index = end + 1
        }
    }

    /// Consumes `bytes` and appends every event they complete to `events` (tests and small inputs).
    mutating func feed(_ bytes: some Collection<UInt8>, into events: inout [ServerSentEvent]) {
        Array(bytes).withUnsafeBytes { buffer in
            feed(buffer) { name, data in events.append(ServerSentEvent(name: name, data: Data(data))) }
        }
    }

    private mutating func endLine<E: Error>(
        _ whole: UnsafeRawBufferPointer, inFeed: Bool, _ onEvent: (String, UnsafeRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        var line = whole
        if atStart {
            atStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line = UnsafeRawBufferPointer(rebasing: line[3...]) }
        }
        if line.isEmpty {
            if hasData {
                let eventName = name ?? "message"
                if let pending = borrowed {
                    try onEvent(eventName, pending)
                } else {
                    try data.withUnsafeBytes { buffer in
                        Result { () throws(E) in try onEvent(eventName, buffer) }
                    }.get()
                }
            }
            data.removeAll(keepingCapacity: true)
            borrowed = nil
            hasData = false
            name = nil
            return
        }
        if line[0] == Self.colon { return }
        let field: UnsafeRawBufferPointer
        var value: UnsafeRawBufferPointer
        if let colon = line.firstIndex(of: Self.colon) {
            field = UnsafeRawBufferPointer(rebasing: line[..<colon])
            value = UnsafeRawBufferPointer(rebasing: line[(colon + 1)...])
            if value.first == Self.space { value = UnsafeRawBufferPointer(rebasing: value[1...]) }
        } else {
            field = line
            value = UnsafeRawBufferPointer(start: nil, count: 0)
        }
        if Self.equals(field, "data") {
            if !hasData, inFeed {
                borrowed = value
            } else {
                if let pending = borrowed {
                    data.append(contentsOf: pending)
                    borrowed = nil
                }
                if hasData { data.append(Self.lf) }
                data.append(contentsOf: value)
            }
            hasData = true
        } else if Self.equals(field, "event") {
            name = String(decoding: value, as: UTF8.self)
        }
    }

    /// The offset of the first LF or CR at or after `start`, else `bytes.count`: two `memchr`
    /// passes (CR only before the LF), far faster than a byte loop over a chunk's JSON.
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let base = bytes.baseAddress else { return bytes.count }
        var end = bytes.count
        if let found = memchr(base + start, Int32(lf), end - start) { end = base.distance(to: UnsafeRawPointer(found)) }
        if end > start, let found = memchr(base + start, Int32(cr), end - start) { end = base.distance(to: UnsafeRawPointer(found)) }
        return end
    }

    /// Whether `field` is `name`, byte for byte (the generic `elementsEqual` was a hot spot).
    private static func equals(_ field: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        guard field.count == name.utf8CodeUnitCount, let base = field.baseAddress else { return false }
        return memcmp(base, name.utf8Start, field.count) == 0
    }
}
