import CJail
import Foundation
import Sandbox
import WardenCore

extension UnpackedImage {
    /// The image's `User` (`name`, `uid`, `name:group`, `uid:gid`) as ids in the jail; nil for
    /// root. Names are looked up in the image's own `/etc/passwd` and `/etc/group`, read inside
    /// the rootfs, so a symlink planted there resolves in the image, never on the host. A
    /// numeric uid the image does not list gets gid 0, as Docker gives it.
    func jailUser() throws -> JailUser? {
        guard let user = configuration.user?.trimmingCharacters(in: .whitespaces), !user.isEmpty else { return nil }
        let parts = user.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let accounts = try entries("etc/passwd")
        var resolved: JailUser
        if let uid = UInt32(parts[0]) {
            let account = accounts.first { $0.count > 3 && UInt32($0[2]) == uid }
            resolved = JailUser(uid: uid, gid: account.flatMap { UInt32($0[3]) } ?? 0, name: account?[0])
        } else {
            guard let account = accounts.first(where: { $0.count > 3 && $0[0] == parts[0] }), let uid = UInt32(account[2]),
                  let gid = UInt32(account[3]) else {
                throw WardenError("image.user", "the image runs as user \"\(parts[0])\", which its /etc/passwd does not list", context: rootfs.path)
            }
            resolved = JailUser(uid: uid, gid: gid, name: parts[0])
        }
        if parts.count == 2 {
            if let gid = UInt32(parts[1]) {
                resolved.gid = gid
            } else {
                guard let group = try entries("etc/group").first(where: { $0.count > 2 && $0[0] == parts[1] }), let gid = UInt32(group[2]) else {
                    throw WardenError("image.user", "the image runs as group \"\(parts[1])\", which its /etc/group does not list", context: rootfs.path)
                }
                resolved.gid = gid
            }
        }
        return resolved.uid == 0 && resolved.gid == 0 ? nil : resolved
    }

    /// The colon-separated fields of each line of `path` in the rootfs; none when it is absent.
    private func entries(_ path: String) throws -> [[String]] {
        let root = open(rootfs.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw WardenError("image.user", "cannot open the unpacked image", context: rootfs.path) }
        defer { close(root) }
        let descriptor = cjail_open_in_root(root, path, O_RDONLY, 0)
        guard descriptor >= 0 else {
            if errno == ENOENT { return [] }
            throw WardenError("image.user", "cannot read /\(path) in the image: \(String(cString: strerror(errno)))", context: rootfs.path)
        }
        let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        let data = try file.read(upToCount: 4 << 20) ?? Data()
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }
}
