import Foundation
import WardenCore

/// Writes a file so that it is either complete or absent: a temporary file in the same
/// directory, flushed, then renamed over the destination.
enum AtomicFile {
    static func write(to url: URL, _ body: (_ append: (Data) throws -> Void) throws -> Void) throws {
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WardenError("file.write", "the output's directory does not exist", context: directory.path)
        }
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw WardenError("file.write", "cannot create a temporary file: \(String(cString: strerror(errno)))", context: temporary.path)
        }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(descriptor) }
            if !renamed { unlink(temporary.path) }
        }
        try body { data in
            try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                guard let base = bytes.baseAddress else { return }
                var offset = 0
                while offset < bytes.count {
                    let written = Foundation.write(descriptor, base + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else {
                        throw WardenError("file.write", "cannot write: \(String(cString: strerror(errno)))", context: temporary.path)
                    }
                    offset += written
                }
            }
        }
        guard fsync(descriptor) == 0 else {
            throw WardenError("file.write", "cannot flush: \(String(cString: strerror(errno)))", context: temporary.path)
        }
        closed = true
        guard close(descriptor) == 0 else {
            throw WardenError("file.write", "cannot close: \(String(cString: strerror(errno)))", context: temporary.path)
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw WardenError("file.write", "cannot move the finished file into place: \(String(cString: strerror(errno)))", context: url.path)
        }
        renamed = true
    }
}

/// Replaces `url` with `data` in one step: readers see the old file or the new one, never half.
public func atomicWrite(_ data: Data, to url: URL) throws {
    try AtomicFile.write(to: url) { append in try append(data) }
}
