import Foundation
import Synchronization
import Testing
@testable import Workspace

/// A commit's pack is built once per process and copied into later checkouts of it.
@Suite struct PackCacheTests {
    private func cache(limit: Int = 64 << 20, count: Int = 64) -> PackCache {
        PackCache(directory: FileManager.default.temporaryDirectory.path, byteLimit: limit, countLimit: count)
    }

    static func expectComplete(_ checkout: URL, at commit: String, history: [String]) throws {
        #expect(try git(["rev-parse", "HEAD"], in: checkout).trimmingCharacters(in: .whitespacesAndNewlines) == commit)
        #expect(try git(["log", "--all", "--format=%H"], in: checkout).split(separator: "\n").map(String.init) == history)
        #expect(try git(["status", "--porcelain"], in: checkout).isEmpty)
        #expect(try gitSucceeds(["fsck", "--full", "--strict"], in: checkout))
    }

    /// Built for the first two checkouts of a commit (a one-shot solve pays nothing for the
    /// cache), copied from the third on.
    @Test func laterCheckoutsOfTheSameCommitCopyItsPack() throws {
        let info = try MaterializeTests.Source()
        let packs = cache()
        for name in ["one", "two", "three", "four"] {
            try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path(name), packs: packs)
            try Self.expectComplete(info.root.path(name), at: info.base, history: [info.base, info.first])
            #expect(packs.state.kept.isEmpty == (name == "one"))
        }
        #expect(packs.state.builds == 2)
        // The copy hides later history exactly as the built pack did.
        #expect(try gitSucceeds(["cat-file", "-e", info.later], in: info.root.path("four")) == false)

        try WorkspaceTracker.materialize(source: info.repo, commit: info.later, into: info.root.path("later"), packs: packs)
        try Self.expectComplete(info.root.path("later"), at: info.later, history: [info.later, info.base, info.first])
        #expect(try read(info.root.path("later").appendingPathComponent("answer.txt")) == "solution\n")
        #expect(packs.state.builds == 3)
    }

    /// Episodes of one task start together: they wait for one build instead of each making
    /// one, and a build others waited for is kept at once.
    @Test func concurrentCheckoutsOfOneCommitBuildOnce() throws {
        let info = try MaterializeTests.Source()
        let packs = cache()
        let (repo, base) = (info.repo, info.base)
        let destinations = (0..<8).map { info.root.path("c\($0)") }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: destinations.count) { index in
            do {
                try WorkspaceTracker.materialize(source: repo, commit: base, into: destinations[index], packs: packs)
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        // One build when the others arrived while it ran; two when the first ended before any
        // other began (then the second is the one kept).
        #expect(packs.state.builds <= 2)
        #expect(packs.state.kept.count == 1)
        for destination in destinations { try Self.expectComplete(destination, at: info.base, history: [info.base, info.first]) }
    }

    @Test func packsOverTheLimitAreNotKeptAndTheOldestGoesFirst() throws {
        let info = try MaterializeTests.Source()
        let tiny = cache(limit: 16)
        for name in ["a", "b", "c"] { try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path(name), packs: tiny) }
        #expect(tiny.state.builds == 3)
        #expect(tiny.state.kept.isEmpty)
        try Self.expectComplete(info.root.path("b"), at: info.base, history: [info.base, info.first])

        // Room for either of these small packs, not both.
        var sizes: [Int] = []
        for (name, commit) in [("size-base", info.base), ("size-later", info.later)] {
            let probe = cache()
            for round in 0..<2 { try WorkspaceTracker.materialize(source: info.repo, commit: commit, into: info.root.path("\(name)-\(round)"), packs: probe) }
            sizes.append(probe.state.bytes)
        }
        let one = cache(limit: sizes.max()! + 1)
        for round in 0..<2 {
            try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path("base-\(round)"), packs: one)
            try WorkspaceTracker.materialize(source: info.repo, commit: info.later, into: info.root.path("later-\(round)"), packs: one)
        }
        #expect(one.state.kept.count == 1)
        #expect(one.state.kept.first?.contains(info.later) == true)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path("base-again"), packs: one)
        #expect(one.state.builds == 5)
        try Self.expectComplete(info.root.path("base-again"), at: info.base, history: [info.base, info.first])

        // A count limit as well: each kept pack holds two descriptors.
        let single = cache(count: 1)
        for round in 0..<2 {
            for commit in [info.base, info.later] {
                try WorkspaceTracker.materialize(source: info.repo, commit: commit, into: info.root.path("single-\(commit)-\(round)"), packs: single)
            }
        }
        #expect(single.state.kept.count == 1)
        #expect(single.state.kept.first?.contains(info.later) == true)
    }
}
