import CGit2
import CGitOffline
import Foundation
import WardenCore

/// Process-wide libgit2 setup: initialised once, isolated from the user's git configuration.
///
/// Global, XDG and system search paths are emptied so that no `~/.gitconfig`,
/// `~/.config/git/ignore` or `/etc/gitconfig` can change what the tracker sees.
private let libgit2Setup: Result<Void, WardenError> = {
    if git_libgit2_init() < 0 {
        return .failure(WardenError("workspace.init", "libgit2 failed to initialise: \(lastGitMessage())"))
    }
    for level in [GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_PROGRAMDATA] {
        let rc = warden_git_set_search_path(Int32(level.rawValue), "")
        if rc < 0 {
            return .failure(WardenError("workspace.init", "could not isolate libgit2 from user configuration: \(lastGitMessage())"))
        }
    }
    // Strict creation reads the header of every object a new tree names, to check it exists:
    // 50 object lookups for each snapshot of a 50-file checkout, a tenth of the harness's CPU
    // in `warden run`. Every tree Warden writes names blobs it has just written or read.
    if warden_git_set_int_option(Int32(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION.rawValue), 0) < 0 {
        return .failure(WardenError("workspace.init", "could not configure libgit2: \(lastGitMessage())"))
    }
    return .success(())
}()

/// How many times libgit2 asked for the system's CA certificates and was given none
/// (Sources/CGitOffline/certificates.c).
var skippedCertificateLoads: Int { Int(cgitoffline_skipped_certificate_loads()) }

/// How many times libgit2 began a Negotiate (GSS-API) authentication and was refused
/// (Sources/CGitOffline/negotiate.c).
var refusedNegotiations: Int { Int(cgitoffline_refused_negotiations()) }

/// Makes sure libgit2 is initialised and isolated; cheap after the first call.
func ensureLibgit2() throws {
    try libgit2Setup.get()
}

extension WorkspaceTracker {
    /// Starts libgit2's one-time set-up on a thread of its own, so that it overlaps whatever a
    /// command does before its first repository operation (0.6 ms, now that the CA bundle is
    /// not parsed: see Sources/CGitOffline). A failure is remembered and reported by that first
    /// operation.
    public static func initializeLibraryInBackground() {
        Thread.detachNewThread { _ = libgit2Setup }
    }
}

/// The message of the last libgit2 error on this thread.
func lastGitMessage() -> String {
    guard let error = git_error_last(), let message = error.pointee.message else {
        return "unknown libgit2 error"
    }
    return String(cString: message)
}

/// Throws a `WardenError` carrying libgit2's message when `rc` reports a failure.
@inline(__always)
func check(_ rc: Int32, _ code: String, _ what: @autoclosure () -> String, context: String? = nil) throws {
    if rc < 0 {
        throw WardenError(code, "\(what()): \(lastGitMessage())", context: context)
    }
}

extension git_oid {
    /// The 40-digit hex form.
    var hex: String {
        var copy = self
        // git_oid_tostr_s formats into a thread-local buffer.
        guard let text = git_oid_tostr_s(&copy) else { return "" }
        return String(cString: text)
    }

    func isEqual(to other: git_oid) -> Bool {
        var a = self
        var b = other
        return git_oid_equal(&a, &b) != 0
    }

    /// Parses a full 40-digit hex id.
    init?(hex: String) {
        guard hex.utf8.count == Int(GIT_OID_HEXSZ) else { return nil }
        var oid = git_oid()
        guard git_oid_fromstr(&oid, hex) == 0 else { return nil }
        self = oid
    }
}

/// Lists the deltas of a diff as (path, status) pairs.
func changes(of diff: OpaquePointer) -> [FileChange] {
    var result: [FileChange] = []
    let count = git_diff_num_deltas(diff)
    result.reserveCapacity(count)
    for i in 0..<count {
        guard let delta = git_diff_get_delta(diff, i)?.pointee else { continue }
        let status: ChangeStatus
        let pathPointer: UnsafePointer<CChar>?
        switch delta.status {
        case GIT_DELTA_ADDED, GIT_DELTA_UNTRACKED:
            status = .added
            pathPointer = delta.new_file.path
        case GIT_DELTA_DELETED:
            status = .deleted
            pathPointer = delta.old_file.path
        case GIT_DELTA_MODIFIED, GIT_DELTA_TYPECHANGE, GIT_DELTA_RENAMED, GIT_DELTA_COPIED:
            status = .modified
            pathPointer = delta.new_file.path
        default:
            continue
        }
        guard let pathPointer else { continue }
        result.append(FileChange(path: String(cString: pathPointer), status: status))
    }
    return result
}

/// Content ids as git computes them, for keys of Warden's caches.
public enum ContentID {
    /// The git blob id of `data` (libgit2's collision-detecting SHA-1), 40 hex digits.
    public static func blob(_ data: Data) throws -> String {
        try ensureLibgit2()
        var oid = git_oid()
        let rc = data.withUnsafeBytes { git_odb_hash(&oid, $0.baseAddress, $0.count, GIT_OBJECT_BLOB) }
        try check(rc, "workspace.hash", "cannot hash \(data.count) bytes")
        return oid.hex
    }
}
