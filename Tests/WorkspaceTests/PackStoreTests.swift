import Foundation
import Testing
import WardenCore
@testable import Workspace

/// A commit's pack is built by the first process that checks it out and copied by later ones.
@Suite struct PackStoreTests {
    /// A process of its own: a fresh in-memory cache over the shared store.
    private func process(_ store: PackStore) -> PackCache {
        PackCache(directory: FileManager.default.temporaryDirectory.path, byteLimit: 64 << 20, store: store)
    }


    @Test func aLaterProcessCopiesTheStoredPackInsteadOfBuildingIt() throws {
        let info = try MaterializeTests.Source()
        let store = PackStore(directory: info.root.path("store").path, byteLimit: 64 << 20)
        let first = process(store)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path("one"), packs: first)
        #expect(first.state.builds == 1)

        let second = process(store)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path("two"), packs: second)
        #expect(second.state.builds == 0)
        try PackCacheTests.expectComplete(info.root.path("two"), at: info.base, history: [info.base, info.first])
        // The copy hides later history exactly as the built pack did, and is not the store's file.
        #expect(try gitSucceeds(["cat-file", "-e", info.later], in: info.root.path("two")) == false)
        let packs = info.root.path("two/.git/objects/pack")
        let copied = try #require(try FileManager.default.contentsOfDirectory(atPath: packs.path).first { $0.hasSuffix(".pack") })
        var checkoutCopy = stat(), storedCopy = stat()
        let storeEntry = try #require(try FileManager.default.contentsOfDirectory(atPath: info.root.path("store").path).first)
        #expect(stat(packs.appendingPathComponent(copied).path, &checkoutCopy) == 0)
        #expect(stat(info.root.path("store/\(storeEntry)/\(copied)").path, &storedCopy) == 0)
        #expect(checkoutCopy.st_ino != storedCopy.st_ino)

        // Another commit is another entry.
        try WorkspaceTracker.materialize(source: info.repo, commit: info.later, into: info.root.path("later"), packs: second)
        #expect(second.state.builds == 1)
        try PackCacheTests.expectComplete(info.root.path("later"), at: info.later, history: [info.later, info.base, info.first])
    }

    /// A damaged entry is no entry: the pack is built, and the checkout is whole.
    @Test(arguments: ["truncated pack", "index of another pack", "another key"])
    func aDamagedEntryIsBuiltAgain(damage: String) throws {
        let info = try MaterializeTests.Source()
        let storePath = info.root.path("store")
        let store = PackStore(directory: storePath.path, byteLimit: 64 << 20)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path("one"), packs: process(store))
        try WorkspaceTracker.materialize(source: info.repo, commit: info.later, into: info.root.path("other"), packs: process(store))
        let entries = try FileManager.default.contentsOfDirectory(atPath: storePath.path).sorted()
        #expect(entries.count == 2)
        // The entry of the base commit is the one whose key names it.
        let entry = try #require(entries.first { (try? String(contentsOf: storePath.appendingPathComponent("\($0)/key"), encoding: .utf8))?.contains(info.base) == true })
        let directory = storePath.appendingPathComponent(entry)
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasSuffix(".pack") }.map { String($0.dropLast(5)) })
        let pack = directory.appendingPathComponent(name + ".pack"), index = directory.appendingPathComponent(name + ".idx")
        switch damage {
        case "truncated pack":
            let bytes = try Data(contentsOf: pack)
            try FileManager.default.removeItem(at: pack)
            try bytes.prefix(bytes.count - 7).write(to: pack)
        case "index of another pack":
            let otherEntry = storePath.appendingPathComponent(try #require(entries.first { $0 != entry }))
            let otherIndex = try #require(try FileManager.default.contentsOfDirectory(atPath: otherEntry.path).first { $0.hasSuffix(".idx") })
            try FileManager.default.removeItem(at: index)
            try FileManager.default.copyItem(at: otherEntry.appendingPathComponent(otherIndex), to: index)
        default:
            try Data("someone else's key".utf8).write(to: directory.appendingPathComponent("key"))
        }

        let later = process(store)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path("two"), packs: later)
        #expect(later.state.builds == 1)
        try PackCacheTests.expectComplete(info.root.path("two"), at: info.base, history: [info.base, info.first])
    }

    @Test func theLeastRecentlyUsedEntriesGoPastTheLimit() throws {
        let info = try MaterializeTests.Source()
        let storePath = info.root.path("store")
        let roomy = PackStore(directory: storePath.path, byteLimit: 64 << 20)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.base, into: info.root.path("base"), packs: process(roomy))
        let baseEntry = try #require(try FileManager.default.contentsOfDirectory(atPath: storePath.path).first)
        let entryBytes = try FileManager.default.contentsOfDirectory(atPath: storePath.appendingPathComponent(baseEntry).path)
            .reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: storePath.appendingPathComponent("\(baseEntry)/\($1)").path)[.size] as? Int) ?? 0) }
        // Room for two entries of about this size.
        usleep(20_000)
        let tight = PackStore(directory: storePath.path, byteLimit: entryBytes * 2, largestPack: 1 << 20)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.first, into: info.root.path("first"), packs: process(tight))
        usleep(20_000)
        try WorkspaceTracker.materialize(source: info.repo, commit: info.later, into: info.root.path("later"), packs: process(tight))
        let left = try FileManager.default.contentsOfDirectory(atPath: storePath.path)
        #expect(!left.contains(baseEntry))
        #expect(left.contains(String(fnv1a(try String(contentsOf: storePath.appendingPathComponent("\(left.first ?? "")/key"), encoding: .utf8)), radix: 16)))
        #expect(left.contains { (try? String(contentsOf: storePath.appendingPathComponent("\($0)/key"), encoding: .utf8))?.contains(info.later) == true })
        #expect(!left.contains { $0.hasPrefix(".partial-") })
    }
}
