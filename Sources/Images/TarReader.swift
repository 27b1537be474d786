import Foundation
import WardenCore

/// One member of a tar stream, with GNU long names and PAX path, linkpath and size applied.
struct TarEntry {
    enum Kind: Equatable {
        case file, hardLink, symlink, directory, fifo, characterDevice, blockDevice
        /// A type this reader does not unpack (sparse files, volume labels...).
        case other(UInt8)
    }

    var path: String
    var kind: Kind
    var linkTarget: String
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    var modificationTime: Int64
}

/// Reads ustar, GNU and PAX tar streams one entry at a time. The caller reads each file's
/// content with `readContent` before asking for the next entry (what is left is skipped).
final class TarReader {
    private let source: any ByteSource
    private let context: String
    private var remaining: Int64 = 0
    private var padding: Int64 = 0

    init(_ source: any ByteSource, context: String) {
        self.source = source
        self.context = context
    }

    private func error(_ message: String) -> WardenError { WardenError("image.tar", message, context: context) }

    /// The next entry, or nil at the end of the archive.
    func next() throws -> TarEntry? {
        try skip(remaining + padding)
        remaining = 0
        padding = 0
        var longName: String?, longLink: String?
        var pax: [String: String] = [:]
        while true {
            let header = try source.readFully(512)
            if header.isEmpty || header.allSatisfy({ $0 == 0 }) { return nil }
            guard header.count == 512 else { throw error("the archive ends inside a header") }
            try verifyChecksum(header)
            let type = header[156]
            let size = try number(header[124..<136], field: "size")
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                let text = cString(try readMeta(size))
                if type == UInt8(ascii: "L") { longName = text } else { longLink = text }
                continue
            case UInt8(ascii: "x"):
                pax.merge(try parsePax(try readMeta(size))) { $1 }
                continue
            case UInt8(ascii: "g"):
                _ = try readMeta(size)  // global headers carry nothing layers need
                continue
            default: break
            }
            var path = longName ?? pax["path"] ?? cString(header[0..<100])
            if longName == nil && pax["path"] == nil && header[257..<262].elementsEqual(Array("ustar".utf8)) {
                let prefix = cString(header[345..<500])
                if !prefix.isEmpty { path = prefix + "/" + path }
            }
            let kind: TarEntry.Kind = switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): .file
            case UInt8(ascii: "1"): .hardLink
            case UInt8(ascii: "2"): .symlink
            case UInt8(ascii: "3"): .characterDevice
            case UInt8(ascii: "4"): .blockDevice
            case UInt8(ascii: "5"): .directory
            case UInt8(ascii: "6"): .fifo
            default: .other(type)
            }
            let entrySize = pax["size"].flatMap { Int64($0) } ?? size
            let headerTime = try number(header[136..<148], field: "mtime")
            let entry = TarEntry(
                path: path, kind: kind, linkTarget: longLink ?? pax["linkpath"] ?? cString(header[157..<257]),
                mode: UInt32(try number(header[100..<108], field: "mode") & 0o7777),
                uid: UInt32(truncatingIfNeeded: try number(header[108..<116], field: "uid")),
                gid: UInt32(truncatingIfNeeded: try number(header[116..<124], field: "gid")),
                size: kind == .file || kind == .other(type) ? entrySize : 0,
                modificationTime: pax["mtime"].flatMap { Double($0) }.map { Int64($0) } ?? headerTime)
            remaining = entry.size
            padding = (512 - entry.size % 512) % 512
            return entry
        }
    }

    /// Reads up to `buffer.count` bytes of the current file; 0 at its end.
    func readContent(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard remaining > 0 else { return 0 }
        let wanted = Int(min(Int64(buffer.count), remaining))
        let got = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]))
        guard got > 0 else { throw error("the archive ends inside a file") }
        remaining -= Int64(got)
        return got
    }

    /// Reads the rest of the current file into memory (for small members: manifests, configs).
    func readContent(limit: Int) throws -> [UInt8] {
        guard remaining <= Int64(limit) else { throw error("a member is larger than \(limit) bytes") }
        let bytes = try source.readFully(Int(remaining))
        guard bytes.count == Int(remaining) else { throw error("the archive ends inside a file") }
        remaining = 0
        return bytes
    }

    private func skip(_ count: Int64) throws {
        var left = count
        var scratch = [UInt8](repeating: 0, count: 65536)
        while left > 0 {
            let got = try scratch.withUnsafeMutableBytes {
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<Int(min(left, 65536))]))
            }
            guard got > 0 else { throw error("the archive ends inside a file") }
            left -= Int64(got)
        }
    }

    private func readMeta(_ size: Int64) throws -> [UInt8] {
        guard size <= 1 << 20 else { throw error("an extended header is larger than 1 MiB") }
        let bytes = try source.readFully(Int(size))
        guard bytes.count == Int(size) else { throw error("the archive ends inside an extended header") }
        try skip((512 - size % 512) % 512)
        return bytes
    }

    private func verifyChecksum(_ header: [UInt8]) throws {
        let stored = try number(header[148..<156], field: "checksum")
        var sum: Int64 = 0
        for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 32 : Int64(byte) }
        guard stored == sum else { throw error("a header's checksum is wrong (not a tar archive, or a corrupt one)") }
    }

    /// An octal field, or GNU's base-256 form for large values.
    private func number(_ field: ArraySlice<UInt8>, field name: String) throws -> Int64 {
        if let first = field.first, first & 0x80 != 0 {
            return field.dropFirst().reduce(Int64(first & 0x7f)) { $0 << 8 | Int64($1) }
        }
        var value: Int64 = 0
        var seen = false
        for byte in field {
            if byte == 0 || byte == 32 { if seen { break } else { continue } }
            guard (48...55).contains(byte) else { throw error("the \(name) field of a header is not octal") }
            value = value * 8 + Int64(byte - 48)
            seen = true
        }
        return value
    }

    private func cString(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// PAX records: "LEN key=value\n".
    private func parsePax(_ bytes: [UInt8]) throws -> [String: String] {
        var records: [String: String] = [:]
        var index = 0
        while index < bytes.count {
            guard let space = bytes[index...].firstIndex(of: 32), let length = Int(String(decoding: bytes[index..<space], as: UTF8.self)),
                  length > 0, index + length <= bytes.count else { throw error("a PAX header is malformed") }
            let record = bytes[(space + 1)..<(index + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records[String(decoding: record[..<equals], as: UTF8.self)] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            index += length
        }
        return records
    }
}
