import Foundation
import Testing

/// Debian's headless Chromium, driven from the command line: the DOM after the page's scripts
/// ran, and screenshots.
enum Browser {
    static let executable = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func run(_ arguments: [String]) throws -> String {
        let path = try #require(Self.executable, "chromium is missing: scripts/install.sh installs it")
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("warden-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        // Root needs --no-sandbox; the profile directory keeps concurrent browsers apart.
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                             "--user-data-dir=\(profile.path)"] + arguments
        let out = profile.appendingPathExtension("out")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "chromium \(arguments) exited \(process.terminationStatus)")
        return String(decoding: try Data(contentsOf: out), as: UTF8.self)
    }

    /// The page's DOM after load (scripts have run), serialized.
    static func dom(_ page: URL) throws -> String { try run(["--dump-dom", page.absoluteString]) }

    /// A PNG of the page; kept in WARDEN_SCREENSHOTS when set, so a person can look at it.
    static func screenshot(_ page: URL, name: String, scratch: URL, height: Int = 1600) throws -> URL {
        let directory = ProcessInfo.processInfo.environment["WARDEN_SCREENSHOTS"].map { URL(fileURLWithPath: $0) } ?? scratch
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let png = directory.appendingPathComponent(name + ".png")
        _ = try run(["--screenshot=\(png.path)", "--window-size=1400,\(height)", page.absoluteString])
        return png
    }
}

@Suite("warden report in a real browser")
struct ReportCLITests {
    static func scratch() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-report-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// `data-metric` values of run `run` in a dumped DOM.
    static func metrics(_ dom: String, run: Int = 0) -> [String: String] {
        var found: [String: String] = [:]
        for match in dom.matches(of: /data-run="(\d+)" data-metric="([^"]*)">([^<]*)</) where Int(match.1) == run {
            found[String(match.2)] = String(match.3)
        }
        return found
    }

    @Test("the report of a starter run shows report.json's counts; its table script runs; a viewer page shows every step")
    func starterRunCounts() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = root.appendingPathComponent("run")
        let ran = try CLITests.warden(["run", "Tasks/starter", "--filter", "strutil|wrapkit|calcly", "--model", "oracle",
                                       "--attempts", "2", "--workers", "2", "--out", run.path])
        #expect(ran.status == 0, "\(ran.stderr)")
        let out = root.appendingPathComponent("report.html")
        let made = try CLITests.warden(["report", run.path, "--out", out.path])
        #expect(made.status == 0, "\(made.stderr)")

        let report = try RunCLITests.report(run)
        let dom = try Browser.dom(out)
        let shown = Self.metrics(dom)
        #expect(shown["tasks"] == "\(report["tasks"] as? Int ?? -1)")
        #expect(shown["finished_attempts"] == "\(report["finished_attempts"] as? Int ?? -1)")
        #expect(shown["resolved_rate"] == String(format: "%.1f%%", (report["resolved_rate"] as? Double ?? -1) * 100))
        #expect(shown["pass@1"] == String(format: "%.1f%%", (report["pass@1"] as? Double ?? -1) * 100))
        #expect(shown["pass@k"] == String(format: "%.1f%%", (report["pass@k"] as? Double ?? -1) * 100))
        let statuses = try #require(report["exit_statuses"] as? [String: Int])
        #expect(!statuses.isEmpty)
        for (status, count) in statuses { #expect(shown["status:" + status] == "\(count)") }
        let tasks = report["tasks"] as? Int ?? -1
        #expect(dom.matches(of: /<tr data-search=/).count == tasks)
        // The nonced script ran under the page's CSP: it counted the rows.
        #expect(dom.contains("<span id=\"shown\" class=\"muted\">\(tasks) of \(tasks) tasks</span>"))
        #expect(dom.contains("Content-Security-Policy"))

        // The first attempt of the first task, through the table's link.
        let link = try #require(dom.firstMatch(of: /<a class="att ok" href="([^"]+)"/)).1
        let attempt = try #require(URL(string: String(link), relativeTo: out)?.absoluteURL)
        let page = try Browser.dom(attempt)
        let results = try String(contentsOf: run.appendingPathComponent("results.jsonl"), encoding: .utf8)
        let first = try #require(try results.split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.min { "\($0["instance_id"] ?? "")#\($0["attempt"] ?? "")" < "\($1["instance_id"] ?? "")#\($1["attempt"] ?? "")" })
        #expect(page.contains(first["instance_id"] as? String ?? "?"))
        #expect(page.matches(of: /<section class="step"/).count == first["steps"] as? Int ?? -1)
        #expect(page.contains("<h3>FAIL_TO_PASS</h3>"))
        #expect(page.contains("<span class=\"add\">+"))
        #expect(!page.contains(">missing<"))

        for (name, url) in [("report-starter", out), ("report-attempt", attempt)] {
            let png = try Browser.screenshot(url, name: name, scratch: root)
            #expect((try FileManager.default.attributesOfItem(atPath: png.path)[.size] as? Int ?? 0) > 10_000)
        }
    }

    @Test("a run of 2,500 tasks splits the task table into pages of 1,000, linked from each other; the first load stays small")
    func largeRunIsPaged() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let run = root.appendingPathComponent("large")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        var lines = ""
        for task in 0..<2500 {
            let row: [String: Any] = [
                "instance_id": String(format: "task-%04d", task), "attempt": 1, "exit_status": task % 4 == 0 ? "step_limit" : "submitted",
                "resolved": task % 3 == 0, "f2p_passed": 0, "f2p_total": 1, "p2p_passed": 0, "p2p_total": 0, "steps": task % 40,
                "format_errors": 0, "prompt_tokens": 1000, "completion_tokens": 100, "episode_seconds": 1.5, "score_seconds": 0.5,
                "model_versions": [String](), "patch": "", "submitted": true, "trajectory": "trajectories/none.jsonl",
            ]
            lines += String(decoding: try JSONSerialization.data(withJSONObject: row), as: UTF8.self) + "\n"
        }
        try lines.write(to: run.appendingPathComponent("results.jsonl"), atomically: true, encoding: .utf8)
        let out = root.appendingPathComponent("big.html")
        let made = try CLITests.warden(["report", run.path, "--out", out.path, "--summary-only"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains("task table in 3 pages"), "\(made.stdout)")
        let first = try Browser.dom(out)
        #expect(Self.metrics(first)["tasks"] == "2500")
        #expect(Self.metrics(first)["resolved_tasks"] == "834")
        #expect(first.matches(of: /<tr data-search=/).count == 1000)
        #expect(first.contains("<span id=\"shown\" class=\"muted\">1000 of 1000 tasks</span>"))
        #expect(first.contains("<a href=\"big-tasks-3.html\">2001–2500</a>"))
        #expect((try FileManager.default.attributesOfItem(atPath: out.path)[.size] as? Int ?? 0) < 2_000_000)
        let last = try Browser.dom(root.appendingPathComponent("big-tasks-3.html"))
        #expect(last.matches(of: /<tr data-search=/).count == 500)
        #expect(last.contains("task-2499") && !last.contains("task-1999<"))
        #expect(last.contains("<a href=\"big.html\">1–1000</a>"))
    }

    /// Markup that would create a `<b data-xss>` element, an `<img>` whose handler and a
    /// `<script>` that would mark the page, and a `javascript:` link, if any of it were parsed.
    static func payload(_ name: String) -> String {
        "</title></pre></textarea><script>document.documentElement.setAttribute('data-ran','\(name)')</script>"
            + "<b data-xss=\"\(name)\">\(name)</b>\"><img src=x onerror=\"document.documentElement.setAttribute('data-ran','\(name)')\">"
            + "<a href=\"javascript:document.title='ran'\">\(name)</a>'"
    }

    @Test("a hostile run renders as text in every renderer and runs no script; invalid UTF-8 shows as U+FFFD")
    func hostileRun() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        let source = root.appendingPathComponent("source")
        let ran = try CLITests.warden(["run", "Tasks/starter", "--filter", "strutil", "--model", "oracle", "--out", source.path])
        #expect(ran.status == 0, "\(ran.stderr)")

        // A run directory whose name, configuration, rows and trajectory all carry the payload.
        // A file name has at most 255 bytes and no `/`: a shorter payload.
        let run = root.appendingPathComponent("run-\"><b data-xss=\"xss-run-name\">xss-run-name<img src=x onerror=alert(1)>")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        var names: [String] = ["xss-run-name"]
        func hostile(_ name: String) -> String { names.append(name); return Self.payload(name) }

        let rowLine = try #require(try String(contentsOf: source.appendingPathComponent("results.jsonl"), encoding: .utf8).split(separator: "\n").first)
        var row = try #require(try JSONSerialization.jsonObject(with: Data(rowLine.utf8)) as? [String: Any])
        let relative = try #require(row["trajectory"] as? String)
        let id = hostile("xss-row-id")
        row["instance_id"] = id
        row["trajectory"] = "trajectories/hostile/1.jsonl"
        var failed = row
        failed["attempt"] = 2
        failed["error"] = hostile("xss-row-error")
        failed["patch"] = "+" + hostile("xss-row-patch")
        // A path out of the run directory is refused: its page shows the row's patch instead.
        failed["trajectory"] = "../source/" + relative
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as? [String: Any])
        config["model"] = hostile("xss-config-model")
        config["suite"] = hostile("xss-config-suite")
        config["taskIDs"] = [id]
        config["attempts"] = 2
        try JSONSerialization.data(withJSONObject: config).write(to: run.appendingPathComponent("config.json"))
        let rows = try [row, failed].map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        try (rows.joined(separator: "\n") + "\n").write(to: run.appendingPathComponent("results.jsonl"), atomically: true, encoding: .utf8)

        let lines = try String(contentsOf: source.appendingPathComponent(relative), encoding: .utf8).split(separator: "\n")
        var records = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        var header = records[0]
        var task = try #require(header["task"] as? [String: Any])
        task["instanceID"] = hostile("xss-task-id")
        task["problemStatement"] = hostile("xss-issue") + "\n[click](javascript:alert(1))"
        task["failToPass"] = (task["failToPass"] as? [String] ?? []) + [hostile("xss-f2p-id")]
        header["task"] = task
        header["model"] = hostile("xss-header-model")
        records[0] = header
        let template = try #require(records.first { $0["type"] as? String == "step" })
        func step(_ index: Int, _ change: (inout [String: Any]) -> Void) -> [String: Any] {
            var step = template
            step["index"] = index
            step["formatError"] = nil
            change(&step)
            return step
        }
        var command = template["command"] as? [String: Any] ?? ["timedOut": false]
        // Escapes of every kind in the output, which the viewer unescapes itself (UNICODE_ESCAPES
        // becomes `\u00e9\ud83d\ude00` in the file).
        command["combined"] = ["head": hostile("xss-output") + "\nbad INVALID_UTF8 bytes\n\ttab \"quoted\" back\\slash /slash UNICODE_ESCAPES",
                               "tail": "the tail", "totalBytes": 100, "droppedBytes": 5]
        let steps = [
            step(1) {
                $0["reasoning"] = hostile("xss-reasoning")
                $0["action"] = ["bash": ["command": hostile("xss-command")]]
                $0["command"] = command
                $0["changes"] = [["path": hostile("xss-changed-path"), "status": "modified"]]
                $0["response"] = ($0["response"] as? [String: Any] ?? [:]).merging(["model": hostile("xss-response-model")]) { $1 }
            },
            step(2) {
                $0["action"] = ["edit": ["path": hostile("xss-edit-path"), "search": hostile("xss-edit-search"), "replace": hostile("xss-edit-replace")]]
                $0["command"] = nil
                $0["toolOutput"] = hostile("xss-tool-output")
            },
            step(3) {
                $0["action"] = ["create": ["path": hostile("xss-create-path"), "content": hostile("xss-create-content")]]
                $0["command"] = nil
            },
            step(4) {
                $0["action"] = nil
                $0["formatError"] = hostile("xss-format-error")
            },
            // 100 lines: the first and last 15 shown, the 70 between folded; payloads in each part.
            step(5) {
                $0["command"] = nil
                $0["toolOutput"] = (1...100).map { line in
                    "line \(line)" + (line == 2 ? hostile("xss-folded-head") : line == 50 ? hostile("xss-folded-middle")
                        : line == 99 ? hostile("xss-folded-tail") : "")
                }.joined(separator: "\n")
            },
        ]
        var final = try #require(records.last)
        final["detail"] = hostile("xss-detail")
        final["submission"] = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-" + hostile("xss-patch-old") + "\n+" + hostile("xss-patch-new") + "\n"
        final["scoreError"] = hostile("xss-score-error")
        var score = try #require(final["score"] as? [String: Any])
        score["statuses"] = (score["statuses"] as? [String: Any] ?? [:]).merging([hostile("xss-test-id"): "PASSED"]) { $1 }
        score["error"] = hostile("xss-score-problem")
        score["revertedPaths"] = [hostile("xss-reverted")]
        score["applyMethod"] = hostile("xss-apply-method")
        final["score"] = score
        var text = try ([header] + steps + [final]).map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
            .joined(separator: "\n")
        text += "\n{\"type\":\"step\",\"index\":" + "\n"  // a damaged line
        var bytes = Data(text.utf8)
        let marker = Data("INVALID_UTF8".utf8)
        while let range = bytes.range(of: marker) { bytes.replaceSubrange(range, with: [0xff, 0xfe, 0xc3]) }
        while let range = bytes.range(of: Data("UNICODE_ESCAPES".utf8)) { bytes.replaceSubrange(range, with: Data(#"\u00e9\ud83d\ude00"#.utf8)) }
        let trajectory = run.appendingPathComponent("trajectories/hostile/1.jsonl")
        try FileManager.default.createDirectory(at: trajectory.deletingLastPathComponent(), withIntermediateDirectories: true)
        try bytes.write(to: trajectory)

        let out = root.appendingPathComponent("report.html")
        let made = try CLITests.warden(["report", run.path, source.path, "--out", out.path])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains("1 trajectory(ies) could not be read"), "\(made.stdout)")
        let attempts = root.appendingPathComponent("report-attempts/run0")
        let pages = try FileManager.default.contentsOfDirectory(at: attempts, includingPropertiesForKeys: nil)
        #expect(pages.count == 2)
        let viewer = try #require(pages.first { $0.lastPathComponent.hasPrefix("1-") })
        let shown = root.appendingPathComponent("shown.html")
        let show = try CLITests.warden(["show", "--html", trajectory.path])
        #expect(show.status == 0)
        try show.stdout.write(to: shown, atomically: true, encoding: .utf8)

        var rendered = ""
        for page in [out, viewer, shown] + pages.filter({ $0 != viewer }) {
            let dom = try Browser.dom(page)
            rendered += dom
            #expect(!dom.contains("<b data-xss"), "an element was injected into \(page.lastPathComponent)")
            #expect(!dom.contains("<img"), "\(page.lastPathComponent)")
            #expect(!dom.contains("data-ran=\""), "a script ran in \(page.lastPathComponent)")
            #expect(!dom.contains("<a href=\"javascript:"), "\(page.lastPathComponent)")
            #expect(dom.matches(of: /<script/).count == (page == out ? 1 : 0), "\(page.lastPathComponent)")
        }
        // Every hostile field was rendered (as text) somewhere.
        let missing = names.filter { !rendered.contains($0) }
        #expect(missing.isEmpty, "not shown: \(missing)")
        #expect(rendered.contains("bad \u{FFFD}\u{FFFD}\u{FFFD} bytes\n\ttab \"quoted\" back\\slash /slash é😀\n[... 5 bytes elided ...]\nthe tail"))
        #expect(rendered.contains("unreadable lines: 8"))
        let viewerDOM = try Browser.dom(viewer)
        let folded = try #require(viewerDOM.firstMatch(of: /<pre class="output">(line 1\n[^<]*)<\/pre><details><summary>70 more lines<\/summary><pre class="output">([^<]*)<\/pre><\/details><pre class="output">([^<]*)<\/pre>/))
        #expect(folded.1.hasSuffix("\nline 15") && folded.1.contains("xss-folded-head") && !folded.1.contains("line 16"))
        #expect(folded.2.hasPrefix("line 16\n") && folded.2.hasSuffix("\nline 85") && folded.2.contains("xss-folded-middle"))
        #expect(folded.3.hasPrefix("line 86\n") && folded.3.hasSuffix("\nline 100") && folded.3.contains("xss-folded-tail"))
        let png = try Browser.screenshot(viewer, name: "report-hostile", scratch: root, height: 2400)
        #expect(FileManager.default.fileExists(atPath: png.path))
    }
}
