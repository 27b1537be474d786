import ArgumentParser
import Foundation
import Sandbox
import WardenCore
import Workspace

/// `warden demo`: the whole foundation on an embedded project, with no model server.
///
/// It builds a small repository with a bug, materializes a checkout at its base commit,
/// runs a scripted fix in the persistent jailed shell and prints every step, the files each
/// step changed (through libgit2) and the final diff.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a scripted fix of an embedded project in the jail (no model server needed)."
    )

    @Option(name: .long, help: "A profile name from Sandboxes/ or a path to a profile file.")
    var profile: String = "agent"

    @Option(name: .long, help: "Keep the demo's files in this directory instead of a temporary one.")
    var keep: String?

    static let files: [String: String] = [
        "README.md": "# wordstats\n\nCounts words in text.\n",
        "wordstats/__init__.py": "from .core import count_words, most_common\n",
        "wordstats/core.py": """
            import re
            from collections import Counter

            WORD = re.compile(r"[A-Za-z']+")


            def count_words(text):
                \"\"\"Counts each word, ignoring case.\"\"\"
                return Counter(word for word in WORD.findall(text))


            def most_common(text, n=1):
                \"\"\"The n most common words with their counts.\"\"\"
                return count_words(text).most_common(n)

            """,
        "tests/test_core.py": """
            from wordstats import count_words, most_common


            def test_counts_words():
                assert count_words("a b a")["a"] == 2


            def test_ignores_case():
                assert count_words("The the THE")["the"] == 3


            def test_most_common():
                assert most_common("x y y", 1) == [("y", 2)]

            """,
    ]

    static let script = [
        "ls -R wordstats tests",
        "python3 -m pytest -q 2>&1 | tail -n 5",
        "grep -n 'Counter(' wordstats/core.py",
        "sed -i 's/for word in WORD.findall(text))/for word in WORD.findall(text.lower()))/' wordstats/core.py",
        "python3 -m pytest -q 2>&1 | tail -n 2",
        "echo 'notes' > NOTES.txt && git status --short",
    ]

    func run() throws {
        let root: URL
        if let keep {
            root = URL(fileURLWithPath: keep)
        } else {
            root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-demo-\(UUID().uuidString)")
        }
        defer { if keep == nil { removeScratch(root) } }
        let source = root.appendingPathComponent("source")
        let checkout = root.appendingPathComponent("checkout")
        let state = root.appendingPathComponent("state")
        for (path, content) in Self.files {
            let file = source.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: file, atomically: true, encoding: .utf8)
        }
        let base = try RepositoryBuilder.commitAll(in: source, message: "wordstats: first version")
        try WorkspaceTracker.materialize(source: source, commit: base, into: checkout)
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let tracker = try WorkspaceTracker(checkout: checkout, stateDirectory: state)
        let configuration = try JailConfiguration(profile: try SandboxProfile.load(profile), checkout: checkout)
        let shell = ShellSession(configuration: configuration)
        defer { shell.close() }

        writeStandardOutput("""
            warden demo: a scripted fix in the jail (profile \(configuration.profile.name))
            checkout \(checkout.path) at base \(base.prefix(12))

            """)
        for (index, command) in Self.script.enumerated() {
            let result = try shell.run(command, timeout: 60)
            let snapshot = try tracker.snapshot()
            writeStandardOutput("\n[\(index + 1)/\(Self.script.count)] $ \(command)\n")
            let output = result.combined.text
            if !output.isEmpty { writeStandardOutput(output.hasSuffix("\n") ? output : output + "\n") }
            var status = "exit \(result.exitCode.map(String.init) ?? "none")" + String(format: ", %.1f ms", result.durationMs)
            if result.timedOut { status += ", timed out" }
            writeStandardOutput("  -> \(status)\n")
            if !snapshot.sincePrevious.isEmpty {
                writeStandardOutput("  changed: " + describe(snapshot.sincePrevious).replacingOccurrences(of: "\n", with: ", ") + "\n")
            }
        }
        let diff = try tracker.diff()
        writeStandardOutput("\nfinal diff against the base commit:\n\(diff)")
        let verify = try shell.run("python3 -m pytest -q >/dev/null 2>&1", timeout: 60)
        writeStandardOutput(verify.exitCode == 0 ? "\ntests pass after the fix\n" : "\ntests still fail\n")
        if verify.exitCode != 0 { throw ExitCode(1) }
    }
}
