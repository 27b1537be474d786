import Foundation

/// Device, inode, size, modification and change times of `path` (without following a final
/// symlink), or "absent": what changes when the file is rewritten, replaced or removed, for
/// caches that must notice.
public func fileSignature(of path: String) -> String {
    var info = stat()
    guard lstat(path, &info) == 0 else { return "absent" }
    return "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
}
