import Foundation

/// Where Warden keeps its caches.
public enum WardenCache {
    /// `$variable` when set, else `<root>/<name>`.
    public static func directory(_ name: String, overriddenBy variable: String) -> URL {
        if let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty { return URL(fileURLWithPath: path) }
        return root.appendingPathComponent(name)
    }

    /// `$XDG_CACHE_HOME/warden` (an absolute one: the XDG rules ignore a relative path), else
    /// `~/.cache/warden`.
    public static var root: URL {
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : nil }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("warden")
    }
}
