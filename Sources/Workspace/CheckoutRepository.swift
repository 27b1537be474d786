import Foundation
import WardenCore

/// Where a checkout keeps its git data, found without letting libgit2 read the checkout's config.
///
/// The tracker opens only the object database of the checkout and resolves `HEAD` by
/// reading the ref files itself, so nothing in `.git/config` (hooks, filters, includes,
/// fsmonitor) takes part in tracking.
struct CheckoutRepository {
    /// The per-worktree git directory (holds `HEAD`).
    var gitDirectory: URL
    /// The directory holding `objects`, `refs` and `packed-refs` (differs for linked worktrees).
    var commonDirectory: URL

    var objectsDirectory: URL { commonDirectory.appendingPathComponent("objects") }

    init(checkout: URL) throws {
        let dotGit = checkout.appendingPathComponent(".git")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) else {
            throw WardenError("workspace.open", "no .git found; pass the base commit's repository or materialize one first", context: checkout.path)
        }
        if isDirectory.boolValue {
            gitDirectory = dotGit
        } else {
            // A gitfile (`gitdir: <path>`), as written for linked worktrees and submodules.
            let text = try Self.read(dotGit)
            guard let line = text.split(separator: "\n").first, line.hasPrefix("gitdir: ") else {
                throw WardenError("workspace.open", ".git is a file but not a gitfile", context: dotGit.path)
            }
            let target = String(line.dropFirst("gitdir: ".count)).trimmingCharacters(in: .whitespaces)
            gitDirectory = target.hasPrefix("/")
                ? URL(fileURLWithPath: target)
                : checkout.appendingPathComponent(target).standardizedFileURL
        }
        let commondir = gitDirectory.appendingPathComponent("commondir")
        if let text = try? Self.read(commondir) {
            let target = text.trimmingCharacters(in: .whitespacesAndNewlines)
            commonDirectory = target.hasPrefix("/")
                ? URL(fileURLWithPath: target)
                : gitDirectory.appendingPathComponent(target).standardizedFileURL
        } else {
            commonDirectory = gitDirectory
        }
    }

    /// The commit id `HEAD` points to, following symbolic refs and packed refs.
    func resolveHEAD() throws -> String {
        try resolve(ref: "HEAD", depth: 0)
    }

    private func resolve(ref: String, depth: Int) throws -> String {
        guard depth < 10 else {
            throw WardenError("workspace.open", "symbolic ref chain too deep at \(ref)", context: gitDirectory.path)
        }
        // HEAD and other pseudo-refs are per worktree; refs/ live in the common dir.
        let candidates = ref.hasPrefix("refs/")
            ? [commonDirectory.appendingPathComponent(ref)]
            : [gitDirectory.appendingPathComponent(ref)]
        for file in candidates {
            guard let text = try? Self.read(file) else { continue }
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if value.hasPrefix("ref: ") {
                return try resolve(ref: String(value.dropFirst(5)), depth: depth + 1)
            }
            return value
        }
        if let packed = try? Self.read(commonDirectory.appendingPathComponent("packed-refs")) {
            for line in packed.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("^") {
                let parts = line.split(separator: " ", maxSplits: 1)
                if parts.count == 2, parts[1] == ref {
                    return String(parts[0])
                }
            }
        }
        throw WardenError("workspace.open", "\(ref) does not name a commit (unborn branch?)", context: gitDirectory.path)
    }

    private static func read(_ url: URL) throws -> String {
        let data = try Data(contentsOf: url)
        return String(decoding: data, as: UTF8.self)
    }
}
