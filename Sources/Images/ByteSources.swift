import CImageCodecs
import Foundation
import WardenCore

/// A stream of bytes read in chunks: a file region, or a decompressor over another stream.
protocol ByteSource: AnyObject {
    /// Fills up to `buffer.count` bytes; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension ByteSource {
    /// Reads exactly `count` bytes, or fewer only at the end of the stream.
    func readFully(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = try bytes.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
            if got == 0 { break }
            filled += got
        }
        return filled == count ? bytes : Array(bytes[0..<filled])
    }
}

/// A region of a file (the whole file by default), read with pread so several regions of one
/// archive can be open at once.
final class FileRegion: ByteSource {
    private let descriptor: Int32
    private let path: String
    private var offset: Int64
    private let end: Int64

    init(path: String, offset: Int64 = 0, length: Int64? = nil) throws {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw WardenError("image.read", "cannot open: \(String(cString: strerror(errno)))", context: path)
        }
        self.path = path
        self.offset = offset
        var info = stat()
        fstat(descriptor, &info)
        end = length.map { offset + $0 } ?? Int64(info.st_size)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let wanted = min(Int64(buffer.count), end - offset)
        guard wanted > 0 else { return 0 }
        while true {
            let got = pread(descriptor, buffer.baseAddress, Int(wanted), off_t(offset))
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw WardenError("image.read", "read failed: \(String(cString: strerror(errno)))", context: path) }
            offset += Int64(got)
            return got
        }
    }

    deinit { close(descriptor) }
}

/// Hashes what passes through, so a blob is checked against its digest while it is unpacked.
final class HashingSource: ByteSource {
    private let inner: any ByteSource
    private let hasher = SHA256()

    init(_ inner: any ByteSource) { self.inner = inner }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let got = try inner.read(into: buffer)
        hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
        return got
    }

    /// Reads what is left (a tar's trailing padding) and returns the digest of everything.
    func drainAndFinish() throws -> Digest {
        var scratch = [UInt8](repeating: 0, count: 65536)
        while try scratch.withUnsafeMutableBytes({ try read(into: $0) }) > 0 {}
        return hasher.finish()
    }
}

/// gzip (or zlib) decompression through zlib; concatenated gzip members are read as one stream.
final class GzipSource: ByteSource {
    private let inner: any ByteSource
    private var stream = z_stream()
    private var input = [UInt8](repeating: 0, count: 65536)
    private var inputEnd = false
    private var finished = false
    private let context: String

    init(_ inner: any ByteSource, context: String) throws {
        self.inner = inner
        self.context = context
        guard warden_inflate_init(&stream) == Z_OK else { throw WardenError("image.gzip", "cannot start zlib", context: context) }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        return try input.withUnsafeMutableBufferPointer { input in
            while true {
                if stream.avail_in == 0 && !inputEnd {
                    let got = try inner.read(into: UnsafeMutableRawBufferPointer(input))
                    if got == 0 { inputEnd = true }
                    stream.next_in = input.baseAddress
                    stream.avail_in = UInt32(got)
                }
                stream.next_out = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
                stream.avail_out = UInt32(buffer.count)
                let status = inflate(&stream, Z_NO_FLUSH)
                let produced = buffer.count - Int(stream.avail_out)
                switch status {
                case Z_STREAM_END:
                    // Another member may follow (pigz, concatenated layers): only the end of the input ends the stream.
                    if stream.avail_in == 0 {
                        let got = inputEnd ? 0 : try inner.read(into: UnsafeMutableRawBufferPointer(input))
                        if got == 0 {
                            inputEnd = true
                            finished = true
                            return produced
                        }
                        stream.next_in = input.baseAddress
                        stream.avail_in = UInt32(got)
                    }
                    inflateReset(&stream)
                    if produced > 0 { return produced }
                case Z_OK, Z_BUF_ERROR:
                    if produced > 0 { return produced }
                    if inputEnd && stream.avail_in == 0 {
                        throw WardenError("image.gzip", "the compressed layer ends early", context: context)
                    }
                default:
                    throw WardenError("image.gzip", "corrupt compressed data (zlib status \(status))", context: context)
                }
            }
        }
    }

    deinit { inflateEnd(&stream) }
}

/// Opens a layer blob for reading as tar: gzip is detected by its magic bytes, zstd refused
/// with a clear error, anything else read as plain tar.
func layerStream(_ raw: any ByteSource, context: String) throws -> any ByteSource {
    let peek = PeekingSource(raw)
    let magic = try peek.peek(4)
    if magic.starts(with: [0x1f, 0x8b]) { return try GzipSource(peek, context: context) }
    if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        throw WardenError("image.zstd", "the layer is zstd-compressed, which Warden cannot unpack yet; use a gzip image", context: context)
    }
    return peek
}

/// A source whose first bytes can be looked at before reading.
final class PeekingSource: ByteSource {
    private let inner: any ByteSource
    private var pending: [UInt8] = []

    init(_ inner: any ByteSource) { self.inner = inner }

    func peek(_ count: Int) throws -> [UInt8] {
        if pending.count < count { pending += try inner.readFully(count - pending.count) }
        return Array(pending.prefix(count))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !pending.isEmpty else { return try inner.read(into: buffer) }
        let count = min(buffer.count, pending.count)
        pending.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        pending.removeFirst(count)
        return count
    }
}
