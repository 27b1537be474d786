import Foundation
import WardenCore

/// Checks, once per process, that the kernel can build the jail, and says what to change when
/// it cannot (an old kernel, user namespaces switched off, a restrictive container).
enum KernelSupport {
    /// mount_setattr (recursive read-only binds) arrived in 5.12.
    static let minimumVersion = (5, 12)

    private static let verdict: Result<Void, any Error> = Result { try check(release: currentRelease(), isRoot: geteuid() == 0, read: readSetting) }

    static func ensureSupported() throws {
        try verdict.get()
    }

    static func check(release: String, isRoot: Bool, read: (String) -> String?) throws {
        if let problem = versionProblem(release: release) ?? namespaceProblem(isRoot: isRoot, read: read) { throw problem }
    }

    /// Why this kernel release cannot build the jail, or nil.
    static func versionProblem(release: String) -> WardenError? {
        guard let version = parseVersion(release) else {
            return WardenError("jail.unsupported", "cannot read the kernel version from \"\(release)\"")
        }
        if version < minimumVersion {
            return WardenError("jail.unsupported", "kernel \(release) is too old: the jail needs Linux \(minimumVersion.0).\(minimumVersion.1) or newer (mount_setattr)")
        }
        return nil
    }

    /// Why user namespaces are not available to this harness, or nil; `read` gives a sysctl file's text.
    static func namespaceProblem(isRoot: Bool, read: (String) -> String?) -> WardenError? {
        if let limit = read("/proc/sys/user/max_user_namespaces"), Int(limit) == 0 {
            return WardenError("jail.unsupported", "user namespaces are disabled (user.max_user_namespaces = 0); enable them with `sysctl -w user.max_user_namespaces=15000`")
        }
        guard !isRoot else { return nil }
        if let allowed = read("/proc/sys/kernel/unprivileged_userns_clone"), allowed == "0" {
            return WardenError("jail.unsupported", "unprivileged user namespaces are disabled; run as root or `sysctl -w kernel.unprivileged_userns_clone=1`")
        }
        if let restricted = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"), restricted == "1" {
            return WardenError("jail.unsupported", "AppArmor restricts unprivileged user namespaces; run as root or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`")
        }
        return nil
    }

    static func parseVersion(_ release: String) -> (Int, Int)? {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return nil }
        return (numbers[0], numbers[1])
    }

    static func currentRelease() -> String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// A /proc or /sys setting without the whitespace around it. (Foundation's
    /// `trimmingCharacters(in:)` cost 0.4 ms here on first use, on every jail start's path.)
    private static func readSetting(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0a || $0 == 0x0d }
        let bytes = text.utf8
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(text[first...last])
    }
}
