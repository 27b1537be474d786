import Foundation
import Sandbox
import Testing
import Workspace

/// Change tracking against a jailed process that swaps a directory for a symlink to a host
/// directory while the tracker scans, as an attacker would to smuggle a host secret into the
/// snapshot, the diff and the trajectory.
@Suite("Tracking under a racing jail")
struct TrackerRaceTests {
    @Test("a directory swapped for a link to a host directory never brings host files into snapshots")
    func swappedDirectoryNeverLeaksTheHost() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        // The secret lives beside the checkout, outside the jail's view: only the tracker could reach it.
        let secretDirectory = checkout.parent.appendingPathComponent("dot-ssh")
        try FileManager.default.createDirectory(at: secretDirectory, withIntermediateDirectories: true)
        let secret = "HOST-SECRET-\(UUID().uuidString)"
        try "\(secret)\n".write(to: secretDirectory.appendingPathComponent("id_rsa"), atomically: true, encoding: .utf8)
        try "\(secret)\n".write(to: secretDirectory.appendingPathComponent("known_hosts"), atomically: true, encoding: .utf8)
        try host("cd '\(checkout.path.path)' && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm base")

        let state = checkout.parent.appendingPathComponent("state")
        let tracker = try WorkspaceTracker(checkout: checkout.path, stateDirectory: state)
        let shell = try makeShell(checkout)
        defer { shell.close() }
        // `d` flips between a real directory (with an innocent id_rsa) and a link to the host
        // directory, by renames, as fast as Python can.
        let swapper = """
            import os, sys
            os.makedirs('real', exist_ok=True)
            open('real/id_rsa', 'w').write('innocent\\n')
            os.symlink(sys.argv[1], 'link')
            open('started', 'w').close()
            while True:
                os.rename('real', 'd'); os.rename('d', 'real')
                os.rename('link', 'd'); os.rename('d', 'link')
            """
        try swapper.write(to: checkout.path.appendingPathComponent("swap.py"), atomically: true, encoding: .utf8)
        let started = try shell.run("python3 swap.py '\(secretDirectory.path)' >/dev/null 2>&1 & for i in $(seq 50); do [ -e started ] && echo running && break; sleep 0.1; done")
        try #require(started.stdout.text == "running\n", "the swapper did not start: \(started.stderr.text)")

        var trees = Set<String>()
        for _ in 0..<400 {
            let snapshot = try tracker.snapshot()
            trees.insert(snapshot.treeID)
            let leakedPaths = snapshot.sinceBase.map(\.path).filter { $0.hasSuffix("known_hosts") }
            #expect(leakedPaths.isEmpty, "a host directory's listing reached the snapshot")
            if !leakedPaths.isEmpty { break }
        }
        _ = try shell.run("kill %1")
        try tracker.persist()
        for tree in trees {
            let diff = try tracker.diff(of: tree)
            #expect(!diff.contains(secret), "snapshot \(tree) holds the host secret")
        }
        #expect(trees.count > 1, "the tracker never saw the swapper at work")
    }
}
