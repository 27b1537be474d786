import Foundation
import Testing
import WardenCore
import Workspace

@Suite struct SnapshotTests {
    @Test func reportsModifiedAddedDeletedAndUntrackedFiles() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "b.txt": "b\n", "dir/c.txt": "c\n"])
        let tracker = try fixture.tracker()
        #expect(tracker.baseCommitID == fixture.baseCommit)

        try write("a changed\n", to: fixture.file("a.txt"))
        try FileManager.default.removeItem(at: fixture.file("b.txt"))
        try write("new\n", to: fixture.file("new.txt"))
        let first = try tracker.snapshot()
        #expect(paths(first.sinceBase, .modified) == ["a.txt"])
        #expect(paths(first.sinceBase, .deleted) == ["b.txt"])
        #expect(paths(first.sinceBase, .added) == ["new.txt"])
        #expect(first.sincePrevious == first.sinceBase)
        #expect(first.treeID != tracker.baseTreeID)
        #expect(!first.gitignoreChanged)

        // Nothing happened: same tree, nothing since previous, same changes since base.
        let second = try tracker.snapshot()
        #expect(second.treeID == first.treeID)
        #expect(second.sincePrevious.isEmpty)
        #expect(second.sinceBase == first.sinceBase)

        // Undo one change: only that path moves.
        try write("b\n", to: fixture.file("b.txt"))
        try write("c again\n", to: fixture.file("dir/c.txt"))
        let third = try tracker.snapshot()
        #expect(paths(third.sincePrevious, .added) == ["b.txt"])
        #expect(paths(third.sincePrevious, .modified) == ["dir/c.txt"])
        #expect(allPaths(third.sinceBase) == ["a.txt", "new.txt", "dir/c.txt"])
    }

    @Test func reportsUntrackedFilesInNestedDirectoriesIndividually() throws {
        let fixture = try Fixture(files: ["README": "r\n"])
        let tracker = try fixture.tracker()
        try write("1\n", to: fixture.file("x/y/z/deep.txt"))
        try write("2\n", to: fixture.file("x/y/other.txt"))
        try write("3\n", to: fixture.file("x/top.txt"))
        try FileManager.default.createDirectory(at: fixture.file("empty/dir"), withIntermediateDirectories: true)
        let snapshot = try tracker.snapshot()
        #expect(snapshot.sinceBase == [
            FileChange(path: "x/top.txt", status: .added),
            FileChange(path: "x/y/other.txt", status: .added),
            FileChange(path: "x/y/z/deep.txt", status: .added),
        ])
    }

    @Test func excludesIgnoredFiles() throws {
        let fixture = try Fixture(files: [".gitignore": "*.log\nbuild/\n", "src/main.c": "int main;\n"])
        let tracker = try fixture.tracker()
        try write("noise\n", to: fixture.file("debug.log"))
        try write("obj\n", to: fixture.file("build/out.o"))
        try write("obj\n", to: fixture.file("src/build/deep.o"))
        try write("kept\n", to: fixture.file("src/util.c"))
        let snapshot = try tracker.snapshot()
        #expect(snapshot.sinceBase == [FileChange(path: "src/util.c", status: .added)])
        #expect(!snapshot.gitignoreChanged)
    }

    @Test func ignoresTheUsersExcludeFileAndConfig() throws {
        // The agent can write .git/info/exclude and .git/config; neither may hide a file.
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        try write("secret.txt\n", to: fixture.file(".git/info/exclude"))
        try git(["config", "core.excludesFile", fixture.root.path("excludes").path], in: fixture.checkout)
        try write("hidden.txt\n", to: fixture.root.path("excludes"))
        try write("s\n", to: fixture.file("secret.txt"))
        try write("h\n", to: fixture.file("hidden.txt"))
        let snapshot = try tracker.snapshot()
        #expect(paths(snapshot.sinceBase, .added) == ["hidden.txt", "secret.txt"])
    }

    @Test func flagsGitignoreChanges() throws {
        let fixture = try Fixture(files: [".gitignore": "*.log\n", "a.txt": "a\n"])
        let tracker = try fixture.tracker()
        try write("x\n", to: fixture.file("a.txt"))
        #expect(try tracker.snapshot().gitignoreChanged == false)

        try write("hide.me\n", to: fixture.file("sub/.gitignore"))
        try write("secret\n", to: fixture.file("sub/hide.me"))
        let nested = try tracker.snapshot()
        #expect(nested.gitignoreChanged)
        #expect(!allPaths(nested.sinceBase).contains("sub/hide.me"))

        try FileManager.default.removeItem(at: fixture.file("sub"))
        #expect(try tracker.snapshot().gitignoreChanged == false)
        try write("*.log\n*.txt\n", to: fixture.file(".gitignore"))
        let top = try tracker.snapshot()
        #expect(top.gitignoreChanged)
        // a.txt was tracked in base: a new ignore rule does not hide its change.
        #expect(paths(top.sinceBase, .modified) == [".gitignore", "a.txt"])
    }

    @Test func recordsSymlinksAsLinksWithoutFollowingThem() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let outside = try TempDirectory()
        try write("outside secret\n", to: outside.path("secret.txt"))
        let tracker = try fixture.tracker()
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: fixture.file("inside-link").path, withDestinationPath: "a.txt")
        try fm.createSymbolicLink(atPath: fixture.file("outside-file").path, withDestinationPath: outside.path("secret.txt").path)
        try fm.createSymbolicLink(atPath: fixture.file("outside-dir").path, withDestinationPath: outside.url.path)
        let snapshot = try tracker.snapshot()
        #expect(paths(snapshot.sinceBase, .added) == ["inside-link", "outside-dir", "outside-file"])

        let diff = try tracker.diff()
        #expect(diff.contains("new file mode 120000"))
        #expect(diff.contains("+\(outside.path("secret.txt").path)"))
        #expect(!diff.contains("outside secret"))
        #expect(!diff.contains("outside-dir/secret.txt"))

        // Turning a file into a link is a modification of that path.
        try fm.removeItem(at: fixture.file("a.txt"))
        try fm.createSymbolicLink(atPath: fixture.file("a.txt").path, withDestinationPath: "/etc/hostname")
        let retyped = try tracker.snapshot()
        #expect(retyped.sincePrevious == [FileChange(path: "a.txt", status: .modified)])
    }

    @Test func recordsFilesInsideDirectoriesThatContainAGitEntry() throws {
        // A nested repository (or a fake `.git` file) must not hide files from the tracker.
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        try write("gitdir: /nowhere\n", to: fixture.file("vendor/.git"))
        try write("hidden\n", to: fixture.file("vendor/lib.c"))
        try write("hidden\n", to: fixture.file("vendor/sub/more.c"))
        let snapshot = try tracker.snapshot()
        #expect(paths(snapshot.sinceBase, .added) == ["vendor/lib.c", "vendor/sub/more.c"])
        // Once recorded, further edits inside show up as usual.
        try write("edited\n", to: fixture.file("vendor/lib.c"))
        try write("new\n", to: fixture.file("vendor/new.c"))
        let next = try tracker.snapshot()
        #expect(next.sincePrevious == [
            FileChange(path: "vendor/lib.c", status: .modified),
            FileChange(path: "vendor/new.c", status: .added),
        ])
    }

    @Test func skipsGitDirectoriesOfRepositoriesTheAgentCreates() throws {
        let fixture = try Fixture(files: ["lib/a.c": "a\n"])
        let tracker = try fixture.tracker()
        // A real repository inside a tracked directory, and one in a new directory.
        try git(["init", "-q", "lib"], in: fixture.checkout)
        try git(["init", "-q", "fresh"], in: fixture.checkout)
        try write("f\n", to: fixture.file("fresh/f.c"))
        try git(["add", "f.c"], in: fixture.file("fresh"))
        try git(["commit", "-q", "-m", "inner"], in: fixture.file("fresh"))
        try write("b\n", to: fixture.file("lib/b.c"))
        let snapshot = try tracker.snapshot()
        #expect(snapshot.sinceBase == [
            FileChange(path: "fresh/f.c", status: .added),
            FileChange(path: "lib/b.c", status: .added),
        ])
    }

    @Test func diffDoesNotConsumeChangesOfTheNextSnapshot() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        try write("a2\n", to: fixture.file("a.txt"))
        #expect(try tracker.diff().contains("+a2"))
        #expect(try tracker.snapshot().sincePrevious == [FileChange(path: "a.txt", status: .modified)])
    }

    @Test func snapshotObjectsOutliveTheTracker() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        var treeID = ""
        do {
            let tracker = try fixture.tracker()
            try write("in memory until persisted\n", to: fixture.file("b.txt"))
            treeID = try tracker.snapshot().treeID
            try tracker.persist()
            try write("written when released\n", to: fixture.file("c.txt"))
            _ = try tracker.snapshot()
        }
        // A new tracker on the same state has an empty object cache: the trees must be on disk.
        let again = try fixture.tracker()
        #expect(try again.diff(of: treeID).contains("+in memory until persisted"))
        #expect(try again.diff().contains("+written when released"))
        try again.restore(to: treeID)
        #expect(!FileManager.default.fileExists(atPath: fixture.file("c.txt").path))
        #expect(try read(fixture.file("b.txt")) == "in memory until persisted\n")
    }

    @Test func writesLargeSnapshotsToDiskWithoutWaiting() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let tracker = try fixture.tracker()
        let packs = fixture.state.appendingPathComponent("shadow.git/objects/pack")
        let before = try FileManager.default.contentsOfDirectory(atPath: packs.path).filter { $0.hasSuffix(".pack") }
        try Data(count: 33 << 20).write(to: fixture.file("big.bin"))
        let snapshot = try tracker.snapshot()
        let after = try FileManager.default.contentsOfDirectory(atPath: packs.path).filter { $0.hasSuffix(".pack") }
        #expect(after.count == before.count + 1)
        #expect(snapshot.sinceBase == [FileChange(path: "big.bin", status: .added)])
        withExtendedLifetime(tracker) {}
    }

    @Test func keepsWorkingAfterTheAgentDeletesDotGit() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "b.txt": "b\n"])
        let tracker = try fixture.tracker()
        try FileManager.default.removeItem(at: fixture.file(".git"))
        try write("a2\n", to: fixture.file("a.txt"))
        try write("n\n", to: fixture.file("n.txt"))
        let snapshot = try tracker.snapshot()
        #expect(snapshot.sinceBase == [
            FileChange(path: "a.txt", status: .modified),
            FileChange(path: "n.txt", status: .added),
        ])
        let diff = try tracker.diff()
        #expect(diff.contains("-a\n+a2\n"))
        #expect(diff.contains("+++ b/n.txt"))
    }

    @Test func staysRelativeToBaseWhenTheAgentUsesGit() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "b.txt": "b\n"])
        let tracker = try fixture.tracker()
        try write("a2\n", to: fixture.file("a.txt"))
        try git(["commit", "-q", "-am", "agent commit"], in: fixture.checkout)
        try git(["checkout", "-q", "-b", "agent-branch"], in: fixture.checkout)
        try write("c\n", to: fixture.file("c.txt"))
        try git(["add", "c.txt"], in: fixture.checkout)
        try git(["commit", "-q", "-m", "another"], in: fixture.checkout)
        let committed = try tracker.snapshot()
        #expect(committed.sinceBase == [
            FileChange(path: "a.txt", status: .modified),
            FileChange(path: "c.txt", status: .added),
        ])

        try write("stashed\n", to: fixture.file("b.txt"))
        try git(["stash", "-q"], in: fixture.checkout)
        #expect(try tracker.snapshot().sincePrevious.isEmpty)

        try git(["reset", "-q", "--hard", fixture.baseCommit], in: fixture.checkout)
        let reset = try tracker.snapshot()
        #expect(reset.sinceBase.isEmpty)
        #expect(reset.treeID == tracker.baseTreeID)
    }

    @Test func leavesTheUsersIndexAndHEADByteIdentical() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "dir/b.txt": "b\n"])
        let indexBefore = try Data(contentsOf: fixture.file(".git/index"))
        let headBefore = try Data(contentsOf: fixture.file(".git/HEAD"))
        let refBefore = try Data(contentsOf: fixture.file(".git/refs/heads/main"))
        let tracker = try fixture.tracker()
        try write("a2\n", to: fixture.file("a.txt"))
        try write("new\n", to: fixture.file("new.txt"))
        _ = try tracker.snapshot()
        _ = try tracker.diff()
        let early = try tracker.snapshot()
        try FileManager.default.removeItem(at: fixture.file("dir/b.txt"))
        _ = try tracker.snapshot()
        try tracker.restore(to: early.treeID)
        #expect(try Data(contentsOf: fixture.file(".git/index")) == indexBefore)
        #expect(try Data(contentsOf: fixture.file(".git/HEAD")) == headBefore)
        #expect(try Data(contentsOf: fixture.file(".git/refs/heads/main")) == refBefore)
    }

    @Test func worksInsideAPrivateDirectory() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"], rootMode: 0o700)
        let attributes = try FileManager.default.attributesOfItem(atPath: fixture.root.url.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        let tracker = try fixture.tracker()
        try write("b\n", to: fixture.file("b.txt"))
        #expect(try tracker.snapshot().sinceBase == [FileChange(path: "b.txt", status: .added)])
    }

    @Test func acceptsAnExplicitBaseCommit() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        try write("later\n", to: fixture.file("a.txt"))
        try git(["commit", "-q", "-am", "later"], in: fixture.checkout)
        let tracker = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.state, baseCommit: String(fixture.baseCommit.prefix(10)))
        #expect(tracker.baseCommitID == fixture.baseCommit)
        #expect(try tracker.snapshot().sinceBase == [FileChange(path: "a.txt", status: .modified)])
    }

    @Test func rejectsAStateDirectoryInsideTheCheckout() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let error = #expect(throws: WardenError.self) {
            _ = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.file("state"))
        }
        #expect(error?.code == "workspace.state")
    }

    @Test func rejectsAnUnknownBaseCommit() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let error = #expect(throws: WardenError.self) {
            _ = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.state, baseCommit: String(repeating: "1", count: 40))
        }
        #expect(error?.code == "workspace.open")
        #expect(error?.message.contains("1111111111") == true)
    }
}
