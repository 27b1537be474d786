import Foundation
import Testing
import WardenCore
import Workspace

@Suite struct DiffTests {
    /// Applies `patch` with `git apply` to a fresh clone of the base and returns the resulting tree id.
    func treeAfterGitApply(_ patch: String, fixture: Fixture) throws -> String {
        let copy = fixture.root.path("clean")
        try git(["clone", "-q", fixture.checkout.path, copy.path], in: fixture.root.url)
        try git(["checkout", "-q", fixture.baseCommit], in: copy)
        let patchFile = fixture.root.path("change.patch")
        try Data(patch.utf8).write(to: patchFile)
        try git(["apply", "--check", patchFile.path], in: copy)
        try git(["apply", patchFile.path], in: copy)
        try git(["add", "-A"], in: copy)
        return try git(["write-tree"], in: copy).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func diffRoundTripsThroughGitApply() throws {
        var bytes = [UInt8](repeating: 0, count: 3000)
        for i in bytes.indices { bytes[i] = UInt8((i * 7) % 256) }
        let fixture = try Fixture(files: ["a.txt": "one\ntwo\nthree\n", "gone.txt": "bye\n", "run.sh": "echo hi\n", "lib/x.c": "int x;\n"])
        try Data(bytes).write(to: fixture.file("blob.bin"))
        try git(["add", "blob.bin"], in: fixture.checkout)
        try git(["commit", "-q", "--amend", "-m", "base"], in: fixture.checkout)
        let base = try git(["rev-parse", "HEAD"], in: fixture.checkout).trimmingCharacters(in: .whitespacesAndNewlines)
        let tracker = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.state)
        #expect(tracker.baseCommitID == base)

        try write("one\n2\nthree\nfour\n", to: fixture.file("a.txt"))
        try FileManager.default.removeItem(at: fixture.file("gone.txt"))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fixture.file("run.sh").path)
        try write("new\n", to: fixture.file("deep/new/file.txt"))
        bytes[10] = 0xFF
        bytes.append(contentsOf: [0, 1, 2, 3])
        try Data(bytes).write(to: fixture.file("blob.bin"))
        try Data([0, 0xC3, 0x28, 0xFF, 0, 9]).write(to: fixture.file("added.bin"))
        try FileManager.default.createSymbolicLink(atPath: fixture.file("link").path, withDestinationPath: "lib/x.c")

        let snapshot = try tracker.snapshot()
        let diff = try tracker.diff()
        #expect(diff.contains("GIT binary patch"))
        #expect(diff.contains("new file mode 120000"))
        #expect(diff.contains("old mode 100644\nnew mode 100755"))
        #expect(diff.contains("+++ b/deep/new/file.txt"))

        let fixtureAtBase = Fixture(copying: fixture, base: base)
        #expect(try treeAfterGitApply(diff, fixture: fixtureAtBase) == snapshot.treeID)
    }

    @Test func diffOfTheBaseIsEmpty() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        try write("ignored? no\n", to: fixture.file("b.txt"))
        let snapshot = try tracker.snapshot()
        #expect(try tracker.diff(of: tracker.baseTreeID).isEmpty)
        #expect(try tracker.diff(of: snapshot.treeID).contains("+ignored? no"))
    }
}

extension Fixture {
    /// The same fixture with a different base commit id (after an amend).
    init(copying other: Fixture, base: String) {
        self.root = other.root
        self.checkout = other.checkout
        self.state = other.state
        self.baseCommit = base
    }
}

@Suite struct ApplyTests {
    @Test func appliesAGoodPatch() throws {
        let fixture = try Fixture(files: ["a.txt": "one\ntwo\nthree\n"])
        let tracker = try fixture.tracker()
        let patch = """
        diff --git a/a.txt b/a.txt
        --- a/a.txt
        +++ b/a.txt
        @@ -1,3 +1,3 @@
         one
        -two
        +TWO
         three
        diff --git a/new.txt b/new.txt
        new file mode 100644
        --- /dev/null
        +++ b/new.txt
        @@ -0,0 +1 @@
        +hello

        """
        try tracker.apply(patch: patch)
        #expect(try read(fixture.file("a.txt")) == "one\nTWO\nthree\n")
        #expect(try read(fixture.file("new.txt")) == "hello\n")
        let snapshot = try tracker.snapshot()
        #expect(snapshot.sinceBase == [
            FileChange(path: "a.txt", status: .modified),
            FileChange(path: "new.txt", status: .added),
        ])
    }

    @Test func appliesItsOwnDiffToAnotherCheckout() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "b.txt": "b\n"])
        let tracker = try fixture.tracker()
        try write("a2\n", to: fixture.file("a.txt"))
        try FileManager.default.removeItem(at: fixture.file("b.txt"))
        try Data([0, 1, 2, 255]).write(to: fixture.file("c.bin"))
        let diff = try tracker.diff()
        let produced = try tracker.snapshot().treeID

        let restored = try tracker.restore(to: tracker.baseTreeID)
        #expect(restored.sinceBase.isEmpty)
        try tracker.apply(patch: diff)
        #expect(try tracker.snapshot().treeID == produced)
    }

    @Test func rejectsAPatchThatDoesNotParse() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        let error = #expect(throws: WardenError.self) {
            try tracker.apply(patch: "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,9 @@\n garbage\n")
        }
        #expect(error?.code == "workspace.apply")
        #expect(error?.message.contains("does not parse") == true)
        #expect(try read(fixture.file("a.txt")) == "a\n")
    }

    @Test(arguments: ["../outside.txt", ".git/hooks/pre-commit", "dir/../../outside.txt"])
    func rejectsAPatchThatWritesOutsideTheWorkingTree(path: String) throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        let patch = """
        diff --git a/\(path) b/\(path)
        new file mode 100644
        --- /dev/null
        +++ b/\(path)
        @@ -0,0 +1 @@
        +escaped

        """
        let error = #expect(throws: WardenError.self) { try tracker.apply(patch: patch) }
        #expect(error?.code == "workspace.apply")
        #expect(!FileManager.default.fileExists(atPath: fixture.root.path("outside.txt").path))
        #expect(!FileManager.default.fileExists(atPath: fixture.file(".git/hooks/pre-commit").path))
    }

    @Test func rejectsAPatchWhoseContextDoesNotMatch() throws {
        let fixture = try Fixture(files: ["a.txt": "one\ntwo\n", "b.txt": "b\n"])
        let tracker = try fixture.tracker()
        let patch = """
        diff --git a/b.txt b/b.txt
        --- a/b.txt
        +++ b/b.txt
        @@ -1 +1 @@
        -b
        +B
        diff --git a/a.txt b/a.txt
        --- a/a.txt
        +++ b/a.txt
        @@ -1,2 +1,2 @@
         uno
        -two
        +dos

        """
        let error = #expect(throws: WardenError.self) { try tracker.apply(patch: patch) }
        #expect(error?.code == "workspace.apply")
        #expect(error?.message.contains("a.txt") == true, "\(String(describing: error))")
        // All or nothing: the hunk that would apply was not written either.
        #expect(try read(fixture.file("b.txt")) == "b\n")
        #expect(try read(fixture.file("a.txt")) == "one\ntwo\n")
    }
}

@Suite struct RestoreTests {
    @Test func restoresAnEarlierSnapshot() throws {
        let fixture = try Fixture(files: [".gitignore": "*.log\n", "a.txt": "a\n", "b.txt": "b\n", "dir/c.txt": "c\n"])
        let tracker = try fixture.tracker()
        try write("a1\n", to: fixture.file("a.txt"))
        try write("u\n", to: fixture.file("untracked/u.txt"))
        let early = try tracker.snapshot()

        try write("a2\n", to: fixture.file("a.txt"))
        try FileManager.default.removeItem(at: fixture.file("b.txt"))
        try FileManager.default.removeItem(at: fixture.file("dir"))
        try FileManager.default.removeItem(at: fixture.file("untracked/u.txt"))
        try write("later\n", to: fixture.file("later/x.txt"))
        try write("keep me\n", to: fixture.file("build.log"))
        _ = try tracker.snapshot()

        let restored = try tracker.restore(to: early.treeID)
        #expect(restored.treeID == early.treeID)
        #expect(restored.sinceBase == early.sinceBase)
        #expect(!restored.sincePrevious.isEmpty)
        #expect(try read(fixture.file("a.txt")) == "a1\n")
        #expect(try read(fixture.file("b.txt")) == "b\n")
        #expect(try read(fixture.file("dir/c.txt")) == "c\n")
        #expect(try read(fixture.file("untracked/u.txt")) == "u\n")
        #expect(!FileManager.default.fileExists(atPath: fixture.file("later/x.txt").path))
        #expect(try read(fixture.file("build.log")) == "keep me\n")
        #expect(try tracker.snapshot().sincePrevious.isEmpty)
        // The checkout's own repository is not part of the working tree: restore leaves it alone.
        #expect(try git(["rev-parse", "HEAD"], in: fixture.checkout).trimmingCharacters(in: .whitespacesAndNewlines) == fixture.baseCommit)
    }

    @Test func restoreRemovesFilesInNestedRepositoriesButNotTheirGitDirectories() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        try git(["init", "-q", "inner"], in: fixture.checkout)
        try write("x\n", to: fixture.file("inner/x.c"))
        #expect(try tracker.snapshot().sinceBase == [FileChange(path: "inner/x.c", status: .added)])
        let restored = try tracker.restore(to: tracker.baseTreeID)
        #expect(restored.sinceBase.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fixture.file("inner/x.c").path))
        #expect(FileManager.default.fileExists(atPath: fixture.file(".git/HEAD").path))
        #expect(FileManager.default.fileExists(atPath: fixture.file("inner/.git/HEAD").path))
    }

    @Test func rejectsAnUnknownTree() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        let error = #expect(throws: WardenError.self) {
            try tracker.restore(to: String(repeating: "a", count: 40))
        }
        #expect(error?.code == "workspace.restore")
        #expect(try read(fixture.file("a.txt")) == "a\n")
    }
}
