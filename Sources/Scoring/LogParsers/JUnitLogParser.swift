import Foundation

/// JUnit XML: `<testcase classname="a.b" name="c">` with an optional `<failure>`, `<error>` or
/// `<skipped>` child. The id is `classname.name`, or `name` when the class name is empty (pytest's
/// collection errors). pytest's `--junitxml` writes `classname` as the dotted file path
/// (`tests.test_x.TestGroup`) and marks xfail as `<skipped type="pytest.xfail">`, read as `XFAIL`.
///
/// The XML may be surrounded by other output and several documents may follow each other (one per
/// suite); everything from the first `<testsuite` to the last closing suite tag is read.
enum JUnitLogParser {
    static func parse(_ log: String) -> ParsedTestLog {
        parse(log, pytestNodeIDs: false)
    }

    /// pytest's `--junitxml` report written with `junit_family=xunit1`, whose `file` attribute
    /// gives each test's pytest node id (`tests/test_x.py::TestGroup::test_y[1]`).
    static func parsePytestReport(_ xml: String) -> ParsedTestLog {
        parse(xml, pytestNodeIDs: true)
    }

    private static func parse(_ log: String, pytestNodeIDs: Bool) -> ParsedTestLog {
        guard let start = log.range(of: "<testsuite") else { return ParsedTestLog() }
        let ends = [log.range(of: "</testsuites>", options: .backwards), log.range(of: "</testsuite>", options: .backwards)]
        let end = ends.compactMap { $0?.upperBound }.max() ?? log.endIndex
        guard start.lowerBound < end else { return ParsedTestLog() }
        var body = String(log[start.lowerBound..<end])
        // Later documents' declarations would be errors in element content.
        while let declaration = body.range(of: "<?xml"), let close = body[declaration.upperBound...].range(of: "?>") {
            body.removeSubrange(declaration.lowerBound..<close.upperBound)
        }
        var collector = Collector(pytestNodeIDs: pytestNodeIDs)
        // A malformed document keeps what came before the error.
        _ = XMLContentReader.read(body.utf8, start: { collector.start($0, $1) }, end: { collector.end($0) })
        return collector.parsed
    }

    /// Collects results as the reader reports elements.
    private struct Collector {
        var parsed = ParsedTestLog()
        let pytestNodeIDs: Bool
        private var current: (id: String, status: TestStatus)?

        init(pytestNodeIDs: Bool) { self.pytestNodeIDs = pytestNodeIDs }

        /// `file::Class::name` from xunit1's `file="tests/test_x.py" classname="tests.test_x.Class"`.
        static func nodeID(file: String, className: String, name: String) -> String {
            let module = (file.hasSuffix(".py") ? String(file.dropLast(3)) : file).replacingOccurrences(of: "/", with: ".")
            var id = file
            if className.hasPrefix(module) {
                let classes = className.dropFirst(module.count).split(separator: ".")
                for part in classes { id += "::" + part }
            }
            return id + "::" + name
        }

        mutating func start(_ elementName: String, _ attributes: [String: String]) {
            switch elementName {
            case "testcase":
                let name = attributes["name"] ?? ""
                let className = attributes["classname"] ?? attributes["class"] ?? ""
                if pytestNodeIDs, let file = attributes["file"], !file.isEmpty {
                    current = (Self.nodeID(file: file, className: className, name: name), .passed)
                } else {
                    current = (className.isEmpty ? name : className + "." + name, .passed)
                }
            case "failure":
                worsen(to: .failed)
            case "error":
                worsen(to: .error)
            case "skipped":
                worsen(to: attributes["type"] == "pytest.xfail" ? .xfail : .skipped)
            default:
                break
            }
        }

        mutating func end(_ elementName: String) {
            guard elementName == "testcase", let result = current else { return }
            if !result.id.isEmpty { parsed.record(result.id, result.status) }
            current = nil
        }

        private mutating func worsen(to status: TestStatus) {
            guard var result = current else { return }
            if status.severity > result.status.severity || result.status == .passed {
                result.status = status
            }
            current = result
        }
    }
}
