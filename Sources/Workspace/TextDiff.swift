import CGit2
import Foundation
import WardenCore

/// Patches between two versions of one file, made by libgit2 from the bytes alone (no repository).
public enum TextDiff {
    /// A `git apply`-able patch turning `old` into `new` at `path`; nil `old` adds the file,
    /// nil `new` deletes it. Empty when the two are the same.
    public static func patch(path: String, old: Data?, new: Data?) throws -> String {
        try ensureLibgit2()
        var options = git_diff_options()
        git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION))
        var patch: OpaquePointer?
        let status = (old ?? Data()).withUnsafeBytes { oldBytes in
            (new ?? Data()).withUnsafeBytes { newBytes in
                git_patch_from_buffers(&patch, old == nil ? nil : oldBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), old?.count ?? 0,
                                       old == nil ? nil : path,
                                       new == nil ? nil : newBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), new?.count ?? 0,
                                       new == nil ? nil : path, &options)
            }
        }
        try check(status, "workspace.diff", "cannot compare two versions of the file", context: path)
        guard let patch else { return "" }
        defer { git_patch_free(patch) }
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        try check(git_patch_to_buf(&buffer, patch), "workspace.diff", "cannot format the patch", context: path)
        guard let pointer = buffer.ptr else { return "" }
        return String(decoding: Data(bytes: pointer, count: buffer.size), as: UTF8.self)
    }
}
