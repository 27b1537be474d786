import Foundation
import Testing
import WardenCore
import Workspace

@Suite struct MaterializeTests {
    /// A source repository with history before and after the base commit, a tag, another branch and a remote.
    struct Source {
        let root: TempDirectory
        let repo: URL
        let first: String
        let base: String
        let later: String

        init() throws {
            root = try TempDirectory()
            repo = root.path("source")
            try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
            try git(["init", "-q"], in: repo)
            try write("v1\n", to: repo.appendingPathComponent("file.txt"))
            try git(["add", "-A"], in: repo)
            try git(["commit", "-q", "-m", "first"], in: repo)
            first = try git(["rev-parse", "HEAD"], in: repo).trimmingCharacters(in: .whitespacesAndNewlines)
            try write("v2\n", to: repo.appendingPathComponent("file.txt"))
            try write("lib\n", to: repo.appendingPathComponent("lib/lib.txt"))
            try git(["add", "-A"], in: repo)
            try git(["commit", "-q", "-m", "base"], in: repo)
            base = try git(["rev-parse", "HEAD"], in: repo).trimmingCharacters(in: .whitespacesAndNewlines)
            try write("the fix\n", to: repo.appendingPathComponent("file.txt"))
            try write("solution\n", to: repo.appendingPathComponent("answer.txt"))
            try git(["add", "-A"], in: repo)
            try git(["commit", "-q", "-m", "the fix"], in: repo)
            later = try git(["rev-parse", "HEAD"], in: repo).trimmingCharacters(in: .whitespacesAndNewlines)
            try git(["tag", "v1.0", later], in: repo)
            try git(["branch", "feature", later], in: repo)
            try git(["remote", "add", "origin", "https://example.com/repo.git"], in: repo)
        }
    }

    func checkHidesLaterHistory(source: URL, info: Source, destination: URL) throws {
        try WorkspaceTracker.materialize(source: source, commit: info.base, into: destination)
        #expect(try read(destination.appendingPathComponent("file.txt")) == "v2\n")
        #expect(try read(destination.appendingPathComponent("lib/lib.txt")) == "lib\n")
        #expect(!FileManager.default.fileExists(atPath: destination.appendingPathComponent("answer.txt").path))

        let all = try git(["log", "--all", "--format=%H"], in: destination)
        #expect(all.split(separator: "\n").map(String.init) == [info.base, info.first])
        #expect(try git(["rev-parse", "HEAD"], in: destination).trimmingCharacters(in: .whitespacesAndNewlines) == info.base)
        #expect(try git(["symbolic-ref", "HEAD"], in: destination).trimmingCharacters(in: .whitespacesAndNewlines) == "refs/heads/main")
        #expect(try git(["for-each-ref", "--format=%(refname)"], in: destination) == "refs/heads/main\n")
        #expect(try git(["remote"], in: destination).isEmpty)
        #expect(try git(["status", "--porcelain"], in: destination).isEmpty)
        #expect(try git(["reflog", "--all"], in: destination).isEmpty)
        #expect(try git(["config", "core.logAllRefUpdates"], in: destination).trimmingCharacters(in: .whitespacesAndNewlines) == "false")
        // The later commit and the blob only it introduced are not there at all.
        _ = try git(["cat-file", "-e", info.later], in: destination, allowFailure: true)
        #expect(try gitSucceeds(["cat-file", "-e", info.later], in: destination) == false)
        let laterBlob = try git(["rev-parse", "\(info.later):answer.txt"], in: info.repo).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try gitSucceeds(["cat-file", "-e", laterBlob], in: destination) == false)
        #expect(try gitSucceeds(["cat-file", "-e", info.first], in: destination))
    }

    @Test func hidesHistoryAfterTheCommit() throws {
        let info = try Source()
        try checkHidesLaterHistory(source: info.repo, info: info, destination: info.root.path("dest"))
    }

    @Test func worksFromABareSource() throws {
        let info = try Source()
        let bare = info.root.path("bare.git")
        try git(["clone", "-q", "--bare", info.repo.path, bare.path], in: info.root.url)
        try checkHidesLaterHistory(source: bare, info: info, destination: info.root.path("dest"))
    }

    /// Checkouts skip libgit2's filters when the tree has no attribute files; one anywhere in
    /// the tree, even deep, keeps them.
    @Test func attributeFilesInTheTreeStillApplyTheirFilters() throws {
        let root = try TempDirectory()
        let repo = root.path("source")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        try git(["init", "-q"], in: repo)
        try write("*.txt eol=crlf\n", to: repo.appendingPathComponent("deep/er/.gitattributes"))
        try write("a\nb\n", to: repo.appendingPathComponent("deep/er/windows.txt"))
        try write("a\nb\n", to: repo.appendingPathComponent("plain.txt"))
        try git(["add", "-A"], in: repo)
        try git(["commit", "-q", "-m", "base"], in: repo)
        let destination = root.path("dest")
        try WorkspaceTracker.materialize(source: repo, commit: "HEAD", into: destination)
        #expect(try read(destination.appendingPathComponent("deep/er/windows.txt")) == "a\r\nb\r\n")
        #expect(try read(destination.appendingPathComponent("plain.txt")) == "a\nb\n")
        #expect(try git(["status", "--porcelain"], in: destination).isEmpty)
    }

    @Test func materializedCheckoutIsTrackable() throws {
        let info = try Source()
        let destination = info.root.path("dest")
        try WorkspaceTracker.materialize(source: info.repo, commit: "main~1", into: destination)
        let tracker = try WorkspaceTracker(checkout: destination, stateDirectory: info.root.path("state"))
        #expect(tracker.baseCommitID == info.base)
        #expect(try tracker.snapshot().sinceBase.isEmpty)
    }

    @Test func namesTheRepositoryAndCommitOnError() throws {
        let info = try Source()
        let error = #expect(throws: WardenError.self) {
            try WorkspaceTracker.materialize(source: info.repo, commit: "no-such-ref", into: info.root.path("dest"))
        }
        #expect(error?.code == "workspace.materialize")
        #expect(error?.description.contains(info.repo.path) == true)
        #expect(error?.description.contains("no-such-ref") == true)

        let missing = #expect(throws: WardenError.self) {
            try WorkspaceTracker.materialize(source: info.root.path("nothing"), commit: info.base, into: info.root.path("dest2"))
        }
        #expect(missing?.description.contains(info.root.path("nothing").path) == true)
    }
}

func gitSucceeds(_ arguments: [String], in directory: URL) throws -> Bool {
    do {
        try git(arguments, in: directory)
        return true
    } catch is CommandFailure {
        return false
    }
}
