import Foundation
import Testing
import WardenCore
@testable import Agent

@Suite("Prompt templates")
struct TemplateTests {
    static let builtIns = ["cwm.system", "cwm.instance", "cwm.format_error", "fenced.system", "tools.system", "instance", "format_error"]

    /// The values as the loop passes them, with every value full of placeholder-like text.
    static let hostileValues = [
        "problem_statement": "Calling {{repo_path}} fails; {{ and }} and {{{x}}} and {{problem_statement}} and {{hints}}, {{ max_steps }}, {{}}, {{9}}.",
        "hints": "\nHints:\nSee {{problem_statement}} and {{repo_path}} and {{command_timeout}}\n",
        "repo_path": "/work/{{submit_rule}}",
        "command_timeout": "120",
        "max_steps": "{{max_steps}}",
        "submit_rule": "Submit {{hints}}.",
    ]

    @Test("an issue full of placeholder-like strings renders the same in every dictionary order: values are never rescanned")
    func oneLevelInEveryOrder() throws {
        let values = Self.hostileValues
        // The oracle: render with sentinels that hold no braces, where order cannot matter,
        // then put the values in place of the sentinels.
        func expected(_ template: String) -> String {
            var sentinels: [String: String] = [:]
            for key in values.keys { sentinels[key] = "\u{1}\(key)\u{1}" }
            var text = Templates.render(template, sentinels)
            for (key, value) in values { text = text.replacingOccurrences(of: "\u{1}\(key)\u{1}", with: value) }
            return text
        }
        var orders = Set<[String]>()
        let keys = values.keys.sorted()
        for template in Self.builtIns.map(Templates.builtIn) {
            let want = expected(template)
            // Dictionaries built in different insertion orders and capacities iterate in
            // different orders, as a new process's hash seed does.
            for rotation in 0..<keys.count {
                for capacity in [0, 8, 16, 64, 256] {
                    var dictionary: [String: String] = [:]
                    dictionary.reserveCapacity(capacity)
                    for key in Array(keys[rotation...] + keys[..<rotation]).reversed() { dictionary[key] = values[key] }
                    orders.insert(Array(dictionary.keys))
                    #expect(Templates.render(template, dictionary) == want)
                }
            }
        }
        #expect(orders.count > 1, "the test saw one dictionary order only")
        let instance = Templates.render(Templates.builtIn("cwm.instance"), values)
        #expect(instance.contains("<issue_description>\n\(values["problem_statement"] ?? "")\n</issue_description>\n\(values["hints"] ?? "")"))
    }

    @Test("the built-in templates render byte-identically to plain replacement, and use only the loop's values")
    func builtInsUnchanged() throws {
        let values = ["problem_statement": "Fix greet().", "hints": "\nHints:\nlook\n", "repo_path": "/repo", "command_timeout": "120",
                      "max_steps": "128", "submit_rule": "A successful submission ends the session.", "error": "FormatError: x",
                      "format_reminder": "One tool."]
        for name in Self.builtIns {
            let template = Templates.builtIn(name)
            var replaced = template
            for (key, value) in values { replaced = replaced.replacingOccurrences(of: "{{\(key)}}", with: value) }
            #expect(Templates.render(template, values) == replaced, "\(name)")
            let keys = name.hasSuffix("format_error") ? OpeningPrompt.formatErrorKeys : OpeningPrompt.keys
            try Templates.check(template, name: name, keys: keys)
        }
    }

    @Test("placeholders: spaces inside the braces are allowed; other braces are literal; a missing value stays as written")
    func grammar() {
        #expect(Templates.render("a {{ x }} b {{x}} c", ["x": "1"]) == "a 1 b 1 c")
        #expect(Templates.render("{{{x}}} {{ }} {{x y}} {{1x}} {x} }}{{", ["x": "1"]) == "{1} {{ }} {{x y}} {{1x}} {x} }}{{")
        #expect(Templates.render("é{{x}}ü\n{{y}}", ["x": "💥"]) == "é💥ü\n{{y}}")
        #expect(Templates.placeholders(in: "one\ntwo {{a}}\n\n{{ b }}").map { "\($0.name)@\($0.line)" } == ["a@2", "b@4"])
    }

    @Test("a template typo is an error naming the template file, the line and the key, before the first model call")
    func typoIsAnError() async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let template = fixture.root.appendingPathComponent("my-instance.txt")
        try "Fix this:\n\n{{problem_statment}}\nin {{repo_path}}\n".write(to: template, atomically: true, encoding: .utf8)
        var configuration = AgentConfiguration()
        configuration.templates.instance = template.path
        let model = ScriptedModel(["<tool: submit>\n\n</tool>"])
        do {
            _ = try await fixture.run(model, configuration: configuration)
            Issue.record("a template with an unknown placeholder was accepted")
        } catch let error as WardenError {
            #expect(error.description.hasPrefix(template.path + ": unknown placeholder {{problem_statment}} on line 3"))
            #expect(error.description.contains("{{problem_statement}}"))
        }
        #expect(model.requests.withLock { $0.isEmpty })

        // The same text inside a value is the issue's business: sent as it is.
        configuration.templates.instance = nil
        let issue = "Typing {{problem_statment}} or {{repo_path}} in a comment breaks the parser."
        let (_, trajectory) = try await fixture.run(ScriptedModel(["<tool: submit>\n\n</tool>"]), configuration: configuration,
                                                    task: TaskInstance(instanceID: "demo-1", problemStatement: issue))
        #expect(trajectory.header.messages[1].content.contains("<issue_description>\n\(issue)\n</issue_description>"))
    }
}
