import Foundation
import Sandbox
import Testing

/// What an agent can leave in its work directory must not outlive the episode.
@Suite struct HostTreeTests {
    @Test func removesWhatFileManagerCannotAndFollowsNoSymlink() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-hosttree-\(UUID().uuidString)")
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("warden-hosttree-outside-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: outside.appendingPathComponent("keep"))
        // The shell builds it the way an agent would: a path past PATH_MAX, a chain past the
        // open-directory bound, a directory with no permissions, a name that is not UTF-8, and
        // symlinks out of the tree.
        let script = """
            cd '\(root.path)'
            n=$(printf 'x%.0s' $(seq 200)); (for i in $(seq 24); do mkdir $n && cd $n; done; echo bottom > leaf)
            (for i in $(seq 150); do mkdir d && cd d; done; echo bottom > leaf; ln -s '\(outside.path)' out)
            mkdir -p locked/inner && echo x > locked/inner/f && chmod 000 locked/inner locked
            touch "$(printf 'bad\\377name')"
            ln -s '\(outside.path)' link && ln -s '\(outside.path)/keep' file-link
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(throws: (any Error).self) { try FileManager.default.removeItem(at: root) }

        try HostTree.remove(atPath: root.path)
        #expect(!FileManager.default.fileExists(atPath: root.path))
        #expect(try String(contentsOf: outside.appendingPathComponent("keep"), encoding: .utf8) == "keep")
        try HostTree.remove(atPath: root.path)  // already gone: nothing to do
    }
}
