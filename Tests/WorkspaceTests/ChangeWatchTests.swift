import Foundation
import Testing
import WardenCore
@testable import Workspace

#if canImport(Glibc)
import Glibc
#endif

/// A watched tracker must record exactly what a full scan records, whatever the agent does.
///
/// Each test runs a watched tracker and a scanning one over the same checkout (separate state
/// directories) and compares trees, change lists and diffs after every snapshot.
@Suite struct ChangeWatchTests {
    /// A watched tracker and a scanning twin over one checkout.
    struct Pair {
        let fixture: Fixture
        let watched: WorkspaceTracker
        let scanned: WorkspaceTracker

        init(files: [String: String], watchLimit: Int = ChangeWatch.defaultLimit) throws {
            fixture = try Fixture(files: files)
            watched = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.root.path("state-watched"),
                                           baseCommit: nil, objectSource: nil, tracking: .watched, watchLimit: watchLimit)
            scanned = try WorkspaceTracker(checkout: fixture.checkout, stateDirectory: fixture.root.path("state-scanned"), tracking: .scanned)
        }

        /// Snapshots both and expects the same result; returns how the watched scan went.
        ///
        /// - Parameter sincePrevious: compare the changes since each tracker's previous snapshot
        ///   too (false when the watched one took snapshots the other did not).
        @discardableResult
        func compare(_ context: @autoclosure () -> String = "", sincePrevious: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws -> TrackerScan {
            let mine = try watched.snapshot()
            let scan = watched.lastScan
            let theirs = try scanned.snapshot()
            #expect(mine.treeID == theirs.treeID, "trees differ \(context()) (watched scan: \(scan))", sourceLocation: sourceLocation)
            #expect(mine.sinceBase == theirs.sinceBase, "changes since base differ \(context())", sourceLocation: sourceLocation)
            #expect(mine.gitignoreChanged == theirs.gitignoreChanged, sourceLocation: sourceLocation)
            if sincePrevious {
                #expect(mine.sincePrevious == theirs.sincePrevious, "changes since previous differ \(context())", sourceLocation: sourceLocation)
            }
            return scan
        }
    }

    static let base: [String: String] = [
        ".gitignore": "*.log\nbuild/\n",
        "README.md": "readme\n",
        "src/a.py": "a = 1\n", "src/b.py": "b = 2\n",
        "src/pkg/c.py": "c = 3\n", "src/pkg/deep/d.py": "d = 4\n",
        "tests/test_a.py": "def test(): pass\n",
        "docs/index.md": "docs\n",
    ]

    @Test func randomEditSequencesRecordWhatAFullScanRecords() throws {
        for seed in UInt64(1)...5 {
            let pair = try Pair(files: Self.base)
            var random = SeededRandom(seed: seed)
            var partialScans = 0
            for step in 0..<40 {
                for _ in 0..<random.next(in: 1...4) {
                    try RandomEdit.apply(in: pair.fixture.checkout, random: &random)
                }
                if case .partial = try pair.compare("(seed \(seed), step \(step))") { partialScans += 1 }
            }
            #expect(try pair.watched.diffData() == pair.scanned.diffData(), "final diffs differ (seed \(seed))")
            // The comparison means something only if most snapshots used the watch.
            #expect(partialScans > 20, "seed \(seed): only \(partialScans) of 40 snapshots used the watch")
        }
    }

    @Test func aDirectoryCreatedAndFilledBetweenSnapshotsIsRecordedWhole() throws {
        let pair = try Pair(files: Self.base)
        try write("x\n", to: pair.fixture.file("new/a/b/c/file.py"))
        try write("y\n", to: pair.fixture.file("new/a/other.py"))
        try FileManager.default.createDirectory(at: pair.fixture.file("new/empty/deeper"), withIntermediateDirectories: true)
        #expect(try pair.compare() == .partial(paths: 1))
        // The new directories are watched now: a change deep inside is seen on its own.
        try write("z\n", to: pair.fixture.file("new/a/b/c/file.py"))
        try write("w\n", to: pair.fixture.file("new/empty/deeper/late.py"))
        #expect(try pair.compare() == .partial(paths: 2))
        #expect(try pair.watched.snapshot().sinceBase.map(\.path).contains("new/empty/deeper/late.py"))
    }

    @Test func aWriterRacingTheSnapshotsIsCaughtUpWith() async throws {
        let pair = try Pair(files: Self.base)
        let checkout = pair.fixture.checkout
        // A process still running in the jail: it keeps creating directories and files while
        // snapshots are taken, so watches are placed while their directories fill.
        let done = Flag()
        let writer = Task.detached {
            defer { done.set() }
            for i in 0..<400 {
                try write("\(i)\n", to: checkout.appendingPathComponent("race/d\(i % 7)/e\(i % 5)/f\(i).txt"))
                if i % 50 == 49 { try FileManager.default.removeItem(at: checkout.appendingPathComponent("race/d\(i % 7)")) }
            }
        }
        var snapshots = 0
        while !done.isSet {
            _ = try pair.watched.snapshot()
            snapshots += 1
        }
        try await writer.value
        try pair.compare("after the writer stopped and \(snapshots) snapshots during its writes", sincePrevious: false)
    }

    @Test func aQueueOverflowFallsBackToAFullScan() throws {
        let pair = try Pair(files: Self.base)
        let limit = try Int(String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 16_384
        // Alternating files: identical consecutive events would be merged by the kernel.
        let first = open(pair.fixture.file("src/a.py").path, O_WRONLY | O_APPEND)
        let second = open(pair.fixture.file("src/b.py").path, O_WRONLY | O_APPEND)
        defer { close(first); close(second) }
        for _ in 0...(limit / 2 + 10) {
            _ = Glibc.write(first, "x", 1)
            _ = Glibc.write(second, "y", 1)
        }
        try write("new\n", to: pair.fixture.file("src/pkg/unseen.py"))
        let scan = try pair.compare()
        #expect(scan == .full(reason: "the watch's event queue overflowed"))
        // The watch was rebuilt: the next change is tracked by path again.
        try write("later\n", to: pair.fixture.file("src/pkg/deep/later.py"))
        #expect(try pair.compare() == .partial(paths: 1))
    }

    @Test func aWatchLimitFallsBackToFullScansForGood() throws {
        // The fixture needs 6 watches (the root and 5 directories); a new subtree needs 3 more.
        let pair = try Pair(files: Self.base, watchLimit: 8)
        try write("1\n", to: pair.fixture.file("more/one/file.py"))
        try write("2\n", to: pair.fixture.file("more/two/file.py"))
        let scan = try pair.compare()
        #expect(scan == .full(reason: "the checkout has more than 8 directories to watch"))
        try write("3\n", to: pair.fixture.file("src/a.py"))
        #expect(try pair.compare() == .full(reason: "the checkout has more than 8 directories to watch"))
    }

    @Test func aDirectoryChainTooDeepToWatchFallsBackToFullScans() throws {
        let pair = try Pair(files: Self.base)
        let deep = (0..<(ChangeWatch.maximumDepth + 6)).map { "d\($0 % 10)" }.joined(separator: "/")
        try write("bottom\n", to: pair.fixture.file(deep + "/leaf.py"))
        guard case .full(let reason) = try pair.compare() else {
            Issue.record("a directory chain past the depth limit was watched")
            return
        }
        #expect(reason.hasPrefix("directories nest deeper than \(ChangeWatch.maximumDepth) levels"))
        try write("bottom again\n", to: pair.fixture.file(deep + "/leaf.py"))
        #expect(try pair.compare() == .full(reason: reason))
    }

    @Test func ruleChangesDirectoryMovesAndHardLinksFallBack() throws {
        let pair = try Pair(files: Self.base)
        // Files that were ignored become visible though nobody touched them.
        try write("old\n", to: pair.fixture.file("build/out.txt"))
        try write("log\n", to: pair.fixture.file("run.log"))
        #expect(try pair.compare() == .partial(paths: 2))
        try write("*.tmp\n", to: pair.fixture.file(".gitignore"))
        #expect(try pair.compare() == .full(reason: ".gitignore changed"))
        #expect(try pair.watched.snapshot().sinceBase.map(\.path).contains("build/out.txt"))

        try FileManager.default.moveItem(at: pair.fixture.file("src/pkg"), to: pair.fixture.file("src/moved"))
        #expect(try pair.compare() == .full(reason: "directory src/pkg moved"))
        try write("e = 5\n", to: pair.fixture.file("src/moved/deep/d.py"))
        #expect(try pair.compare() == .partial(paths: 1))

        // A second name for a file: a write through it changes the other unseen.
        try FileManager.default.linkItem(at: pair.fixture.file("src/a.py"), to: pair.fixture.file("docs/alias.py"))
        #expect(try pair.compare() == .full(reason: "a file in the checkout has more than one hard link"))
        let handle = try FileHandle(forWritingTo: pair.fixture.file("docs/alias.py"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("more\n".utf8))
        try handle.close()
        #expect(try pair.compare() == .full(reason: "a file in the checkout has more than one hard link"))
        #expect(try pair.watched.snapshot().sinceBase.contains(FileChange(path: "src/a.py", status: .modified)))
    }

    @Test func aDirectorySwappedForASymlinkIsNotWatchedThrough() throws {
        let pair = try Pair(files: Self.base)
        let outside = pair.fixture.root.path("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        // Created, then swapped for a link to a host directory before the watch reaches it.
        try FileManager.default.createDirectory(at: pair.fixture.file("swap"), withIntermediateDirectories: true)
        try FileManager.default.removeItem(at: pair.fixture.file("swap"))
        try FileManager.default.createSymbolicLink(at: pair.fixture.file("swap"), withDestinationURL: outside)
        try pair.compare()
        try write("host\n", to: outside.appendingPathComponent("secret.txt"))
        #expect(try pair.compare() == .partial(paths: 0))
        #expect(try !pair.watched.snapshot().sinceBase.map(\.path).contains { $0.contains("secret") })
    }
}

/// One random change of the kind agents make, applied with plain file system calls.
enum RandomEdit {
    static func apply(in checkout: URL, random: inout SeededRandom) throws {
        let fm = FileManager.default
        let files = allFiles(in: checkout)
        let directories = [""] + allDirectories(in: checkout)
        let directory = directories[random.next(in: 0...(directories.count - 1))]
        func inDirectory(_ name: String) -> URL {
            checkout.appendingPathComponent(directory.isEmpty ? name : directory + "/" + name)
        }
        let name = "f\(random.next(in: 0...40))" + [".py", ".txt", ".log", ""][random.next(in: 0...3)]
        switch random.next(in: 0...13) {
        case 0, 1, 2:
            // Append: the size always changes, so the stat-based scan sees it as surely as the watch.
            guard let file = files.randomElement(using: &random) else { return }
            let handle = try FileHandle(forWritingTo: file)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("edit \(random.next(in: 0...999))\n".utf8))
            try handle.close()
        case 3, 4:
            try write("new \(random.next(in: 0...999))\n", to: inDirectory(name))
        case 5:
            try write("deep\n", to: inDirectory("n\(random.next(in: 0...9))/m\(random.next(in: 0...9))/\(name)"))
        case 6:
            guard let file = files.randomElement(using: &random) else { return }
            try fm.removeItem(at: file)
        case 7:
            guard directory != "" else { return }
            try fm.removeItem(at: checkout.appendingPathComponent(directory))
        case 8:
            guard let file = files.randomElement(using: &random), !fm.fileExists(atPath: inDirectory(name).path) else { return }
            try fm.moveItem(at: file, to: inDirectory(name))
        case 9:
            guard let file = files.randomElement(using: &random) else { return }
            let mode = (try fm.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int) ?? 0o644
            try fm.setAttributes([.posixPermissions: mode ^ 0o111], ofItemAtPath: file.path)
        case 10:
            guard !fm.fileExists(atPath: inDirectory(name).path) else { return }
            try fm.createSymbolicLink(atPath: inDirectory(name).path, withDestinationPath: "target-\(random.next(in: 0...9))")
        case 11:
            // A file replaced by a directory of the same name.
            guard let file = files.randomElement(using: &random) else { return }
            try fm.removeItem(at: file)
            try write("inside\n", to: file.appendingPathComponent("inner.py"))
        case 12:
            try write("ignored\n", to: inDirectory("build/obj\(random.next(in: 0...9)).o"))
        default:
            try fm.createDirectory(at: inDirectory("empty\(random.next(in: 0...9))"), withIntermediateDirectories: true)
        }
    }

    static func allFiles(in root: URL) -> [URL] {
        entries(in: root).filter { !$0.isDirectory }.map(\.url)
    }

    static func allDirectories(in root: URL) -> [String] {
        entries(in: root).filter(\.isDirectory).map { String($0.url.path.dropFirst(root.path.count + 1)) }
    }

    private static func entries(in root: URL) -> [(url: URL, isDirectory: Bool)] {
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey, .isSymbolicLinkKey]) else { return [] }
        var result: [(URL, Bool)] = []
        for case let url as URL in enumerator {
            if url.lastPathComponent == ".git" {
                enumerator.skipDescendants()
                continue
            }
            let values = try? url.resourceValues(forKeys: [.isDirectoryKey, .isSymbolicLinkKey])
            if values?.isSymbolicLink == true { continue }
            result.append((url, values?.isDirectory == true))
        }
        return result.sorted { $0.0.path < $1.0.path }
    }
}

/// A one-way flag shared with a writer task.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}
