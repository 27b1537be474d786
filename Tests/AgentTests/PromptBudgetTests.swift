import Foundation
import Testing
import WardenCore
@testable import Agent

@Suite("Prompt budget")
struct PromptBudgetTests {
    /// An issue of `lines` numbered lines (a long traceback, as real issues have), with
    /// multi-byte characters so a cut inside one would show.
    static func longIssue(lines: Int) -> String {
        (1...lines).map { "line \($0): déjà vu 💥 in frame \($0)" }.joined(separator: "\n")
    }

    @Test("defaults: CWM's 8,192 tokens for cwm, none for tools and fenced; 0 is none; the configuration file sets it")
    func defaults() throws {
        #expect(AgentConfiguration().promptBudget == 8_192)
        #expect(AgentConfiguration(protocol: .tools).promptBudget == nil)
        #expect(AgentConfiguration(protocol: .fenced).promptBudget == nil)
        #expect(AgentConfiguration(promptBudgetTokens: 0).promptBudget == nil)
        #expect(AgentConfiguration(protocol: .fenced, promptBudgetTokens: 1_000).promptBudget == 1_000)
        // Switching protocols after the fact (as --protocol does) follows the new protocol's default.
        var configuration = AgentConfiguration()
        configuration.protocol = .tools
        #expect(configuration.promptBudget == nil)

        let file = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-budget-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try #"{"protocol": "tools", "prompt_budget_tokens": 4096}"#.write(to: file, atomically: true, encoding: .utf8)
        #expect(try AgentConfiguration.load(file).promptBudget == 4_096)
    }

    @Test("a long issue loses its beginning, at a character boundary, behind CWM's [...] marker; the message fits the budget")
    func leftTruncation() throws {
        let issue = Self.longIssue(lines: 3_000)
        let values = ["problem_statement": issue, "hints": "\nHints:\nlook at frame 1\n", "repo_path": "/repo", "command_timeout": "120",
                      "max_steps": "128", "submit_rule": "A successful submission ends the session."]
        let template = Templates.builtIn("cwm.instance")
        let (text, truncation) = OpeningPrompt.fit(template, values, budget: 2_000)
        let record = try #require(truncation)
        let estimate = estimateTokens([ChatMessage(role: .user, content: text)])
        #expect(estimate <= 2_000 && estimate >= 1_990, "the message's estimate is \(estimate)")
        #expect(record.budgetTokens == 2_000 && record.keptTokens == estimate)
        #expect(record.originalTokens == estimateTokens([ChatMessage(role: .user, content: Templates.render(template, values))]))
        #expect(record.originalBytes == issue.utf8.count && record.marker == "[...]")

        // The instructions around the issue are whole; the issue keeps its end.
        let opening = "Solve the following issue by changing the code and submitting a patch file:\n\n<issue_description>\n[...]"
        #expect(text.hasPrefix(opening))
        let kept = try #require(text.dropFirst(opening.count).components(separatedBy: "\n</issue_description>\n").first)
        #expect(kept.utf8.count == record.keptBytes)
        #expect(issue.hasSuffix(kept) && kept.hasSuffix("line 3000: déjà vu 💥 in frame 3000"))
        #expect(text.contains("\nHints:\nlook at frame 1\n") && text.hasSuffix(template.components(separatedBy: "{{repo_path}}").last ?? "?"))

        // Within the budget nothing is cut; no budget, nothing is cut.
        #expect(OpeningPrompt.fit(template, values, budget: record.originalTokens).1 == nil)
        #expect(OpeningPrompt.fit(template, values, budget: nil).0 == Templates.render(template, values))
    }

    @Test("the cwm protocol sends a long issue cut to 8,192 estimated tokens and records the cut; tools sends it whole",
          arguments: [ProtocolName.cwm, .tools])
    func episode(protocol name: ProtocolName) async throws {
        let fixture = try EpisodeFixture()
        defer { fixture.cleanup() }
        let issue = Self.longIssue(lines: 4_000)
        let model = ScriptedModel(results: [.success(ModelResponse(content: "", finishReason: "stop"))])
        let (_, trajectory) = try await fixture.run(model, configuration: AgentConfiguration(protocol: name),
                                                    task: TaskInstance(instanceID: "demo-1", problemStatement: issue))
        let sent = try #require(model.requests.withLock { $0.first?.messages[1] })
        #expect(trajectory.header.messages[1] == sent)
        #expect(trajectory.header.task.problemStatement == issue)
        if name == .cwm {
            let record = try #require(trajectory.header.promptTruncation)
            #expect(estimateTokens([sent]) <= 8_192 && record.keptTokens == estimateTokens([sent]))
            #expect(record.budgetTokens == 8_192 && record.originalBytes == issue.utf8.count && record.keptBytes < issue.utf8.count)
            #expect(sent.content.contains("<issue_description>\n[...]") && sent.content.contains("line 4000: déjà vu 💥 in frame 4000\n</issue_description>"))
            #expect(!sent.content.contains("line 1: "))
        } else {
            #expect(trajectory.header.promptTruncation == nil)
            #expect(sent.content.contains("<issue>\n\(issue)\n</issue>"))
        }
    }
}
