import Agent
import Foundation
import Runs
import Scoring
import WardenCore

/// A trajectory read for viewing: only the fields the viewer shows are decoded (not the
/// observations, the tool schemas or the opening messages, which repeat what is shown), and
/// invalid UTF-8 in the file becomes U+FFFD instead of an unreadable line.
struct ViewedTrajectory {
    struct Header: Decodable {
        var task: TaskInstance
        var model: String
        var startedAt: String
        var sandboxProfile: String
        var baseCommit: String
        var wardenVersion: String
    }

    struct Command: Decodable {
        var combined: CapturedOutput
        var timedOut: Bool

        /// Set in a decoder's userInfo when `CombinedOutputReader` reads the output's strings:
        /// only its byte counts are decoded then.
        static let outputReadApart = CodingUserInfoKey(rawValue: "warden.report.outputReadApart")

        private enum CodingKeys: String, CodingKey { case combined, timedOut }

        private struct Counts: Decodable {
            var totalBytes: Int
            var droppedBytes: Int
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            timedOut = try container.decode(Bool.self, forKey: .timedOut)
            if let key = Self.outputReadApart, decoder.userInfo[key] as? Bool == true {
                let counts = try container.decode(Counts.self, forKey: .combined)
                combined = CapturedOutput(totalBytes: counts.totalBytes, droppedBytes: counts.droppedBytes)
            } else {
                combined = try container.decode(CapturedOutput.self, forKey: .combined)
            }
        }
    }

    struct Response: Decodable {
        var model: String?
        var promptTokens: Int?
        var completionTokens: Int?
        var latencyMs: Double
    }

    struct Step: Decodable {
        var index: Int
        var startedAt: String
        var response: Response
        var reasoning: String?
        var action: AgentAction?
        var formatError: String?
        var review: ReviewOutcome?
        var command: Command?
        var toolOutput: String?
        var exitCode: Int32?
        var durationMs: Double
        var changes: [FileChange]
    }

    /// A line's kind, when it has to be decoded to find out.
    private struct Record: Decodable {
        var type: String
    }

    var header: Header
    var steps: [Step]
    var final: TrajectoryFinal?
    var damagedLines: [Int]

    static func read(_ url: URL) throws -> ViewedTrajectory {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw WardenError("report.trajectory", "cannot read the trajectory", context: url.path)
        }
        let decoder = JSONDecoder()
        let outputApart = JSONDecoder()
        if let key = Command.outputReadApart { outputApart.userInfo[key] = true }
        var header: Header?
        var steps: [Step] = []
        var final: TrajectoryFinal?
        var damaged: [Int] = []
        for (offset, line) in jsonLines(data).enumerated() where !line.isEmpty {
            do {
                switch kind(of: line) {
                case "header": header = try decoder.decode(Header.self, from: line)
                case "step": steps.append(try step(line, decoder: decoder, outputApart: outputApart))
                case "final": final = try decoder.decode(TrajectoryFinal.self, from: line)
                default: damaged.append(offset + 1)
                }
            } catch {
                damaged.append(offset + 1)
            }
        }
        guard let header else {
            throw WardenError("report.trajectory", "no header record; is this a Warden trajectory?", context: url.path)
        }
        return ViewedTrajectory(header: header, steps: steps, final: final, damagedLines: damaged)
    }

    /// A step line, its command output read by `CombinedOutputReader`, or by `decoder` when
    /// the reader cannot.
    static func step(_ line: Data, decoder: JSONDecoder, outputApart: JSONDecoder) throws -> Step {
        var step = try outputApart.decode(Step.self, from: line)
        guard step.command != nil else { return step }
        guard let output = line.withUnsafeBytes({ CombinedOutputReader.read($0) }) else { return try decoder.decode(Step.self, from: line) }
        step.command?.combined.head = output.head
        step.command?.combined.tail = output.tail
        return step
    }

    /// The file's lines, found with memchr (Data's generic split is slow), each as its own Data;
    /// a line that is not valid UTF-8 is repaired (U+FFFD) so that it still decodes.
    static func jsonLines(_ data: Data) -> [Data] {
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> [Data] in
            guard let base = bytes.baseAddress else { return [] }
            var lines: [Data] = []
            var start = 0
            while start <= bytes.count {
                let rest = bytes.count - start
                let end = memchr(base + start, 0x0a, rest).map { base.distance(to: UnsafeRawPointer($0)) } ?? bytes.count
                let line = UnsafeRawBufferPointer(start: base + start, count: end - start)
                if String(validating: line.bindMemory(to: UInt8.self), as: UTF8.self) != nil {
                    lines.append(Data(line))
                } else {
                    lines.append(Data(HTML.decode(line).utf8))
                }
                start = end + 1
            }
            return lines
        }
    }

    /// The record's `type`, found without decoding the line: `"type":"step"` cannot occur inside
    /// a JSON string (its quotes would be escaped), so a match is the record's own key, or a
    /// nested one, which no record kind has. A line without it is decoded to find out.
    static func kind(of line: Data) -> String? {
        let marker = Array("\"type\":\"".utf8)
        let found = line.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> String? in
            guard let base = bytes.baseAddress else { return nil }
            var index = 0
            while index + marker.count <= bytes.count, let hit = memchr(base + index, Int32(marker[0]), bytes.count - index) {
                let at = base.distance(to: UnsafeRawPointer(hit))
                let after = at + marker.count
                if after <= bytes.count && memcmp(base + at, marker, marker.count) == 0 {
                    for kind in ["step", "header", "final"] {
                        let name = Array(kind.utf8)
                        if after + name.count < bytes.count && memcmp(base + after, name, name.count) == 0
                            && bytes[after + name.count] == UInt8(ascii: "\"") {
                            return kind
                        }
                    }
                }
                index = at + 1
            }
            return nil
        }
        if let found { return found }
        // A line that is not a record is the caller's damaged line, listed on the page.
        do { return try JSONDecoder().decode(Record.self, from: line).type } catch { return nil }
    }
}

/// The viewer of one attempt: the task, each step (reasoning folded, action, output head and
/// tail with the rest folded, exit code, duration, changed files), the final patch as a
/// coloured diff, and the scoring with each FAIL_TO_PASS and PASS_TO_PASS test's status.
struct TrajectoryPage {
    var trajectory: ViewedTrajectory
    /// The row of the run this attempt belongs to, when viewed from a report.
    var result: AttemptResult?
    /// Where the report is, relative to this page.
    var backLink: String?
    /// Lines of output shown before and after the folded middle.
    var outputLines = 15

    func render() -> String {
        let header = trajectory.header
        var body = ""
        if let backLink { body += "<p><a href=\"\(HTML.attribute(backLink))\">← report</a></p>" }
        body += "<h1>\(HTML.text(header.task.instanceID))"
        if let result { body += " <span class=\"muted\">attempt \(result.attempt)</span>" }
        body += "</h1>" + summary()
        body += "<details><summary>issue</summary><pre>\(HTML.text(header.task.problemStatement))</pre></details>"
        body += "<h2>Steps <span class=\"muted\">\(trajectory.steps.count)</span></h2>"
        body += trajectory.steps.map(step).joined(separator: "\n")
        body += finalSection()
        if !trajectory.damagedLines.isEmpty {
            body += "<p class=\"bad\">unreadable lines: \(trajectory.damagedLines.map(String.init).joined(separator: ", "))</p>"
        }
        return HTML.page(title: "\(header.task.instanceID) · Warden trajectory", body: body)
    }

    func summary() -> String {
        let header = trajectory.header
        var items: [(String, String)] = [("model", header.model), ("profile", header.sandboxProfile),
                                         ("base", header.baseCommit), ("started", header.startedAt), ("warden", header.wardenVersion)]
        if let final = trajectory.final {
            items.insert(("exit status", final.exitStatus.rawValue + (final.detail.map { " (\($0))" } ?? "")), at: 0)
            items.append(("tokens", "\(final.promptTokens) prompt + \(final.completionTokens) completion"))
            items.append(("time", String(format: "%.1f s", final.wallTimeMs / 1000)))
            if let score = final.score {
                items.insert(("resolved", (score.resolved ? "yes" : "no") + (score.resolution.map { " (\($0.rawValue))" } ?? "")), at: 1)
            }
        }
        if let error = result?.error { items.append(("harness failure", error)) }
        return "<section class=\"card\"><dl>" + items.map { "<dt>\(HTML.text($0.0))</dt><dd>\(HTML.text($0.1))</dd>" }.joined()
            + "</dl></section>"
    }

    func step(_ step: ViewedTrajectory.Step) -> String {
        var html = "<section class=\"step\" id=\"step-\(step.index)\"><h3>step \(step.index)</h3><div class=\"meta muted\">"
        html += "<span>\(HTML.text(step.startedAt))</span>"
        if let model = step.response.model { html += "<span>\(HTML.text(model))</span>" }
        if let tokens = step.response.completionTokens { html += "<span>\(tokens) tokens</span>" }
        html += String(format: "<span>model %.2f s</span></div>", step.response.latencyMs / 1000)
        if let reasoning = step.reasoning, !reasoning.isEmpty {
            html += "<details class=\"reasoning\"><summary>reasoning</summary><pre>\(HTML.text(reasoning))</pre></details>"
        }
        if let problem = step.formatError {
            return html + "<p class=\"bad\">format error: \(HTML.text(problem))</p></section>"
        }
        if let action = step.action { html += actionHTML(action) }
        if let review = step.review { html += "<p class=\"muted\">\(HTML.text(review.rawValue)) by the operator</p>" }
        html += output(step.command?.combined.text ?? step.toolOutput ?? "")
        var status = "exit \(step.exitCode.map(String.init) ?? "–") · " + String(format: "%.2f s", step.durationMs / 1000)
        if step.command?.timedOut == true { status += " · timed out" }
        html += "<div class=\"meta\"><span class=\"\(step.exitCode == 0 ? "ok" : "bad")\">\(status)</span>"
        if !step.changes.isEmpty {
            html += "<span>changed: " + step.changes.map { "\(HTML.text($0.status.rawValue)) <code>\(HTML.text($0.path))</code>" }
                .joined(separator: ", ") + "</span>"
        }
        return html + "</div></section>"
    }

    func actionHTML(_ action: AgentAction) -> String {
        switch action {
        case let .bash(command): return "<pre class=\"action\">$ \(HTML.text(command))</pre>"
        case let .edit(path, search, replace):
            return "<p>edit <code>\(HTML.text(path))</code></p><pre class=\"diff\">"
                + HTML.lines(search).map { "<span class=\"del\">-\(HTML.text($0))</span>" }.joined()
                + HTML.lines(replace).map { "<span class=\"add\">+\(HTML.text($0))</span>" }.joined()
                + "</pre>"
        case let .create(path, content):
            return "<p>create <code>\(HTML.text(path))</code> (\(content.utf8.count) bytes)</p>" + output(content)
        case let .submit(path): return "<p>submit\(path.map { " <code>\(HTML.text($0))</code>" } ?? "")</p>"
        }
    }

    /// The head and tail of `text`, with the lines between folded.
    ///
    /// Cut at newline offsets instead of splitting into lines and joining them again (that was
    /// a third of a report's time): the parts are the text's own bytes between two newlines.
    func output(_ text: String) -> String {
        guard !text.isEmpty else { return "" }
        let newlines = HTML.newlineIndices(text)
        let lineCount = newlines.count + 1
        guard lineCount > 2 * outputLines + 2 else { return "<pre class=\"output\">\(HTML.text(text))</pre>" }
        /// Lines `range` of `text`, without the newline after the last one.
        func lines(_ range: Range<Int>) -> Substring {
            guard !range.isEmpty else { return "" }
            let start = range.lowerBound == 0 ? text.startIndex : text.utf8.index(after: newlines[range.lowerBound - 1])
            let end = range.upperBound == lineCount ? text.endIndex : newlines[range.upperBound - 1]
            return text[start..<end]
        }
        let head = lines(0..<outputLines), tail = lines(lineCount - outputLines..<lineCount)
        let middle = lines(outputLines..<lineCount - outputLines)
        return "<pre class=\"output\">\(HTML.text(head))</pre><details><summary>\(lineCount - 2 * outputLines) more lines</summary>"
            + "<pre class=\"output\">\(HTML.text(middle))</pre></details><pre class=\"output\">\(HTML.text(tail))</pre>"
    }

    func finalSection() -> String {
        guard let final = trajectory.final else {
            return "<h2>No final record</h2><p class=\"bad\">The episode did not finish (killed?).</p>"
        }
        var html = "<h2>\(final.submission == nil ? "Final diff (not submitted)" : "Submitted patch")</h2>"
        html += Self.diff(final.submission ?? final.finalDiff)
        html += "<h2>Scoring</h2>"
        if let error = final.scoreError { html += "<p class=\"bad\">scoring failed: \(HTML.text(error))</p>" }
        guard let score = final.score else { return html + "<p class=\"muted\">not scored</p>" }
        html += "<p>\(score.resolved ? "<span class=\"ok\">resolved</span>" : "<span class=\"bad\">not resolved</span>")"
        if let resolution = score.resolution { html += " · \(HTML.text(resolution.rawValue))" }
        if let method = score.applyMethod { html += " · applied with <code>\(HTML.text(method))</code>" }
        if let code = score.testExitCode { html += " · tests exited \(code)" }
        html += String(format: " · %.1f s tests, %.1f s overhead</p>", score.testMilliseconds / 1000, score.overheadMilliseconds / 1000)
        if let error = score.error { html += "<p class=\"bad\">\(HTML.text(error))</p>" }
        if !score.revertedPaths.isEmpty {
            html += "<p>reverted test files: " + score.revertedPaths.map { "<code>\(HTML.text($0))</code>" }.joined(separator: ", ") + "</p>"
        }
        html += tests("FAIL_TO_PASS", trajectory.header.task.failToPass, score: score)
        html += tests("PASS_TO_PASS", trajectory.header.task.passToPass, score: score)
        let others = score.statuses.keys.filter { !trajectory.header.task.failToPass.contains($0) && !trajectory.header.task.passToPass.contains($0) }
        if !others.isEmpty {
            html += "<details><summary>\(others.count) other test(s) in the log</summary><table><tbody>"
            for id in others.sorted() { html += "<tr><td>\(HTML.text(id))</td><td>\(HTML.text(score.statuses[id]?.rawValue ?? ""))</td></tr>" }
            html += "</tbody></table></details>"
        }
        return html
    }

    /// A table of the expected tests with the status each had in the log ("missing" when absent).
    func tests(_ title: String, _ ids: [String], score: EvaluationResult) -> String {
        guard !ids.isEmpty else { return "" }
        var html = "<h3>\(title)</h3><table class=\"tests\"><tbody>"
        for id in ids {
            let status = score.statuses[id]?.rawValue ?? "missing"
            html += "<tr><td>\(HTML.text(id))</td><td class=\"\(status == "PASSED" || status == "XFAIL" ? "ok" : "bad")\">\(HTML.text(status))</td></tr>"
        }
        return html + "</tbody></table>"
    }

    /// A unified diff with each line classed by its kind.
    static func diff(_ patch: String) -> String {
        guard !patch.isEmpty else { return "<p class=\"muted\">empty</p>" }
        var html = "<pre class=\"diff\">"
        for line in HTML.lines(patch) {
            let kind = line.hasPrefix("+++") || line.hasPrefix("---") || line.hasPrefix("diff ") ? "file"
                : line.hasPrefix("@@") ? "hunk" : line.hasPrefix("+") ? "add" : line.hasPrefix("-") ? "del" : "ctx"
            html += "<span class=\"\(kind)\">\(HTML.text(line))</span>"
        }
        return html + "</pre>"
    }
}
