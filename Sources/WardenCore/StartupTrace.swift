import Foundation

/// Marks on the way from `exec` to the first command, for `warden-bench startup`: with
/// `WARDEN_STARTUP_TRACE=FILE` set, each mark appends "name seconds-since-1970" to FILE.
public enum StartupTrace {
    private static let descriptor: Int32 = getenv("WARDEN_STARTUP_TRACE").map { open($0, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) } ?? -1

    public static func mark(_ name: String) {
        guard descriptor >= 0 else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let line = "\(name) \(now.tv_sec).\(zeroPadded(now.tv_nsec / 1000, width: 6))\n"
        _ = line.withCString { write(descriptor, $0, strlen($0)) }
    }
}

/// `value` in decimal with leading zeros to `width` digits.
public func zeroPadded(_ value: some BinaryInteger, width: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}
