import Foundation
import Testing
import WardenCore
@testable import Workspace

/// Start-up paths: base objects read from an object source, copied without one, and the stat
/// cache seeded from the checkout's own index.
@Suite struct TrackerStartTests {
    func packFiles(_ state: URL) throws -> [String] {
        let packs = state.appendingPathComponent("shadow.git/objects/pack")
        return try FileManager.default.contentsOfDirectory(atPath: packs.path).filter { $0.hasSuffix(".pack") }
    }

    @Test func objectSourceIsReadInPlaceAndSurvivesRemovingDotGit() throws {
        let info = try MaterializeTests.Source()
        let checkout = info.root.path("checkout")
        let state = info.root.path("state")
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: checkout)
        var earlyTree = ""
        do {
            let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: state, objectSource: info.repo)
            #expect(tracker.baseCommitID == info.base)
            #expect(try packFiles(state).isEmpty)  // nothing copied
            try FileManager.default.removeItem(at: checkout.appendingPathComponent(".git"))
            try write("agent\n", to: checkout.appendingPathComponent("file.txt"))
            try write("n\n", to: checkout.appendingPathComponent("n.txt"))
            let snapshot = try tracker.snapshot()
            #expect(snapshot.sinceBase == [
                FileChange(path: "file.txt", status: .modified),
                FileChange(path: "n.txt", status: .added),
            ])
            #expect(try tracker.diff().contains("-v2\n+agent\n"))
            earlyTree = snapshot.treeID
            try write("later\n", to: checkout.appendingPathComponent("lib/lib.txt"))
            _ = try tracker.snapshot()
        }
        // Reopened without .git: the recorded alternate still provides the base objects.
        let again = try WorkspaceTracker(checkout: checkout, stateDirectory: state, baseCommit: info.base, objectSource: info.repo)
        #expect(try again.snapshot().sinceBase.count == 3)
        try again.restore(to: earlyTree)
        #expect(try read(checkout.appendingPathComponent("lib/lib.txt")) == "lib\n")
        #expect(try read(checkout.appendingPathComponent("file.txt")) == "agent\n")
    }

    @Test func worksWithoutDotGitGivenABaseCommitAndAnObjectSource() throws {
        let info = try MaterializeTests.Source()
        let checkout = info.root.path("plain")
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: checkout)
        try FileManager.default.removeItem(at: checkout.appendingPathComponent(".git"))
        let missing = #expect(throws: WardenError.self) {
            _ = try WorkspaceTracker(checkout: checkout, stateDirectory: info.root.path("state1"), baseCommit: info.base)
        }
        #expect(missing?.code == "workspace.open")

        // A bare repository, and an objects directory, both work as sources.
        let bare = info.root.path("bare.git")
        try git(["clone", "-q", "--bare", info.repo.path, bare.path], in: info.root.url)
        for (n, source) in [bare, bare.appendingPathComponent("objects")].enumerated() {
            let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: info.root.path("state-\(n)"), baseCommit: String(info.base.prefix(12)), objectSource: source)
            #expect(tracker.baseCommitID == info.base)
            #expect(try tracker.snapshot().sinceBase.isEmpty)
        }
    }

    @Test func copiesBaseObjectsWhenTheObjectSourceLacksThem() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "dir/b.txt": "b\n"])
        let unrelated = try Fixture(files: ["other.txt": "o\n"])
        let tracker = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.state, objectSource: unrelated.checkout)
        #expect(try packFiles(fixture.state).count == 1)
        #expect(!FileManager.default.fileExists(atPath: fixture.state.appendingPathComponent("shadow.git/objects/info/alternates").path))
        try FileManager.default.removeItem(at: fixture.file(".git"))
        try write("a2\n", to: fixture.file("a.txt"))
        #expect(try tracker.snapshot().sinceBase == [FileChange(path: "a.txt", status: .modified)])
        #expect(try tracker.diff().contains("-a\n+a2\n"))
    }

    @Test func rejectsAnObjectSourceInsideTheCheckout() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        let error = #expect(throws: WardenError.self) {
            _ = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.state, objectSource: fixture.checkout)
        }
        #expect(error?.code == "workspace.state")
    }

    /// Makes every entry of the checkout's index older than the index file, so none is racily clean.
    func ageIndexEntries(_ fixture: Fixture) throws {
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: fixture.file(".git/index").path)
    }

    @Test func seedsTheStatCacheFromTheCheckoutsIndex() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "dir/b.txt": "b\n", "dir/c.txt": "c\n"])
        try ageIndexEntries(fixture)
        let tracker = try fixture.tracker()
        #expect(tracker.seededStatEntries == 3)
        #expect(try tracker.snapshot().sinceBase.isEmpty)
        try write("c2\n", to: fixture.file("dir/c.txt"))
        #expect(try tracker.snapshot().sinceBase == [FileChange(path: "dir/c.txt", status: .modified)])
    }

    @Test func staleIndexEntriesAreHashedNotTrusted() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n"])
        // The checkout's index disagrees with the base: one change staged, one committed later.
        try write("staged\n", to: fixture.file("a.txt"))
        try git(["add", "a.txt"], in: fixture.checkout)
        try write("committed\n", to: fixture.file("b.txt"))
        try git(["commit", "-q", "-m", "later", "b.txt"], in: fixture.checkout)
        try ageIndexEntries(fixture)
        let tracker = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.state, baseCommit: fixture.baseCommit)
        #expect(tracker.seededStatEntries == 1)  // only c.txt agrees with the base tree
        let snapshot = try tracker.snapshot()
        #expect(snapshot.sinceBase == [
            FileChange(path: "a.txt", status: .modified),
            FileChange(path: "b.txt", status: .modified),
        ])
        #expect(snapshot.sincePrevious.isEmpty)
    }

    @Test func racilyCleanIndexEntriesAreHashed() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n", "b.txt": "b\n"])
        // An index written no later than its entries' files cannot vouch for them.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000)], ofItemAtPath: fixture.file(".git/index").path)
        let tracker = try fixture.tracker()
        #expect(tracker.seededStatEntries == 0)
        #expect(try tracker.snapshot().sinceBase.isEmpty)
    }

    @Test func ignoresAnUnreadableIndex() throws {
        let fixture = try Fixture(files: ["a.txt": "a\n"])
        try Data("not an index".utf8).write(to: fixture.file(".git/index"))
        try write("a2\n", to: fixture.file("a.txt"))
        let tracker = try fixture.tracker()
        #expect(tracker.seededStatEntries == 0)
        #expect(try tracker.snapshot().sinceBase == [FileChange(path: "a.txt", status: .modified)])
    }
}
