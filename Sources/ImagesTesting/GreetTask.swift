import Foundation
import Images
import Workspace

/// A SWE-bench-shaped task whose repository lives at /testbed in its image: a bash function
/// that says Hello where the issue wants Hi, TAP tests, a gold patch and a hidden test patch.
/// The image holds bash, git, patch and the coreutils the tests and scoring use, from the host.
public enum GreetTask {
    public static let instanceID = "warden__greet-1"
    public static let failToPass = ["says hi"]
    public static let passToPass = ["greets with two words"]
    public static let testCommand = "bash tests/run.sh"

    public static let goldPatch = """
        diff --git a/greet.sh b/greet.sh
        --- a/greet.sh
        +++ b/greet.sh
        @@ -1 +1 @@
        -greet() { echo "Hello $1"; }
        +greet() { echo "Hi $1"; }

        """

    public static let testPatch = """
        diff --git a/tests/cases_hi.sh b/tests/cases_hi.sh
        new file mode 100644
        --- /dev/null
        +++ b/tests/cases_hi.sh
        @@ -0,0 +1 @@
        +check "says hi" "$(greet Ann)" "Hi Ann"

        """

    /// The repository's files at the base commit.
    public static let files = [
        "greet.sh": "greet() { echo \"Hello $1\"; }\n",
        "tests/run.sh": """
            source ./greet.sh
            n=0
            check() { n=$((n+1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
            for cases in tests/cases_*.sh; do source "$cases"; done
            echo "1..$n"

            """,
        "tests/cases_words.sh": "check \"greets with two words\" \"$(greet Bob | wc -w)\" \"2\"\n",
    ]

    public static func writeFiles(to directory: URL) throws {
        for (path, content) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// The task's image as a `docker save` archive in `directory`, with a stale copy of the
    /// repository at /testbed (as SWE-bench images have) that the checkout must hide.
    public static func writeImage(in directory: URL) throws -> URL {
        try writeImage(in: directory) { testbed in
            try "the image's stale copy\n".write(to: testbed.appendingPathComponent("greet.sh"), atomically: true, encoding: .utf8)
        }
    }

    /// The task's image with the repository itself at /testbed, a git repository at the base
    /// commit (as SWE-bench images have it); returns the archive and the commit.
    public static func writeImageWithRepository(in directory: URL) throws -> (archive: URL, base: String) {
        var base = ""
        let archive = try writeImage(in: directory) { testbed in
            try writeFiles(to: testbed)
            base = try RepositoryBuilder.commitAll(in: testbed, message: "base")
        }
        return (archive, base)
    }

    /// The image, with `testbed` filling its /testbed.
    public static func writeImage(in directory: URL, testbed: (URL) throws -> Void) throws -> URL {
        let root = directory.appendingPathComponent("greet-rootfs")
        try TestImages.assembleRootfs(at: root, binaries: [
            "/bin/bash", "/bin/sh", "/bin/cat", "/usr/bin/git", "/usr/bin/patch", "/bin/date", "/usr/bin/env", "/bin/grep",
            "/bin/sed", "/bin/ls", "/bin/echo", "/bin/mkdir", "/bin/rm", "/usr/bin/tr", "/usr/bin/head", "/usr/bin/wc",
            "/usr/bin/dirname", "/usr/bin/base64", "/bin/true",
        ])
        try FileManager.default.createDirectory(at: root.appendingPathComponent("testbed"), withIntermediateDirectories: true)
        try testbed(root.appendingPathComponent("testbed"))
        let tar = directory.appendingPathComponent("greet-layer.tar")
        try TestImages.tar(root, to: tar)
        try FileManager.default.removeItem(at: root)
        let archive = directory.appendingPathComponent("greet-image.tar")
        try TestImages.writeDockerArchive(layers: [tar], env: ["PATH=/usr/bin:/bin", "GREETING_IMAGE=1"], workingDir: "/testbed", to: archive)
        try FileManager.default.removeItem(at: tar)
        return archive
    }

    /// A suite directory holding the task, its `image` naming the archive.
    public static func writeSuite(in directory: URL, image: URL) throws -> URL {
        let suite = directory.appendingPathComponent("suite")
        let task = suite.appendingPathComponent(instanceID)
        try writeFiles(to: task.appendingPathComponent("repo"))
        let row: [String: Any] = [
            "instance_id": instanceID, "repo": "warden/greet", "FAIL_TO_PASS": failToPass, "PASS_TO_PASS": passToPass,
            "test_cmd": testCommand, "log_parser": "tap", "image": "docker-archive:" + image.path,
        ]
        try JSONSerialization.data(withJSONObject: row, options: [.prettyPrinted, .sortedKeys]).write(to: task.appendingPathComponent("task.json"))
        try "greet should say Hi, not Hello.\n".write(to: task.appendingPathComponent("issue.md"), atomically: true, encoding: .utf8)
        try goldPatch.write(to: task.appendingPathComponent("gold.patch"), atomically: true, encoding: .utf8)
        try testPatch.write(to: task.appendingPathComponent("test.patch"), atomically: true, encoding: .utf8)
        return suite
    }
}
