import Foundation
@testable import Synth
import Testing

/// The token-level mutators (JavaScript, Rust) and the issue text, without a jail.
@Suite("synth: token mutators and issue text")
struct TokenMutatorTests {
    func apply(_ mutation: Mutation, to source: String) throws -> String {
        String(decoding: try #require(mutation.applied(to: Data(source.utf8))), as: UTF8.self)
    }

    @Test("JavaScript: operators between spaces, integers and booleans change; strings, comments and arrows do not")
    func javaScript() throws {
        let source = """
            // a < b in a comment
            function inRange(x, lo, hi) {
              const label = "x < 10 && y";
              if (x >= lo && x < hi) return true;
              const f = (a) => a + 1;
              return x === 10;
            }
            """
        let found = TokenMutator.javaScript.mutations(in: Array(source.utf8), file: "lib/range.js")
        let results = try found.map { ($0.kind, try apply($0, to: source)) }
        func has(_ kind: String, _ line: String) -> Bool { results.contains { $0.0 == kind && $0.1.contains(line) } }
        #expect(has("flip_comparison", "if (x < lo && x < hi) return true;"))
        #expect(has("flip_comparison", "if (x >= lo && x >= hi) return true;"))
        #expect(has("flip_boolean", "if (x >= lo || x < hi) return true;"))
        #expect(has("flip_literal", "return false;"))
        #expect(has("shift_constant", "return x === 11;"))
        #expect(has("flip_comparison", "return x !== 10;"))
        #expect(has("swap_arithmetic", "const f = (a) => a - 1;"))
        #expect(results.allSatisfy { $0.1.contains("// a < b in a comment") && $0.1.contains(#""x < 10 && y""#) })
        #expect(found.filter { $0.line == 4 }.allSatisfy { $0.function == "inRange" })
        #expect(found.first { $0.line == 5 }?.function == "f")
        #expect(found.count == 10)
    }

    @Test("Rust: generics, lifetimes, char literals and the #[cfg(test)] module are left alone")
    func rust() throws {
        let source = """
            fn first<'a>(items: &'a Vec<u8>, limit: usize) -> Option<&'a u8> {
                let quote = '<';
                if items.len() > limit { return None; }
                items.first()
            }

            #[cfg(test)]
            mod tests {
                #[test]
                fn t() { assert!(1 < 2); }
            }
            """
        let found = TokenMutator.rust.mutations(in: Array(source.utf8), file: "src/lib.rs")
        #expect(found.map(\.kind) == ["flip_comparison"])
        #expect(try apply(try #require(found.first), to: source).contains("if items.len() <= limit"))
        #expect(found.first?.function == "first")
    }

    @Test("task ids: one per set of mutants, the same on every run, never shared by two different edits")
    func taskIDs() {
        let edit = Mutation(file: "a/b.py", kind: "flip_comparison", function: "f", line: 3, start: 10, end: 11, replacement: ">=")
        var other = edit
        other.replacement = ">"
        var elsewhere = edit
        elsewhere.file = "a/c.py"
        let ids = [[edit], [other], [elsewhere], [edit, elsewhere]].map { TaskWriter.taskID(repository: "me/lib", mutations: $0) }
        #expect(Set(ids).count == 4)
        #expect(ids[0] == TaskWriter.taskID(repository: "me/lib", mutations: [edit]))
        #expect(ids.allSatisfy { $0.hasPrefix("me__lib-synth-") && $0.count == "me__lib-synth-".count + 16 })
    }

    @Test("the issue names the failing tests and their output but never the mutated file or line; --model gets the filled prompt")
    func issueText() async throws {
        let mutation = Mutation(file: "pkg/core.py", kind: "flip_comparison", function: "f", line: 2, start: 0, end: 0, replacement: "")
        let mutated = ["pkg/core.py": Data("def f(x):\n    return x >= limit_value\n".utf8)]
        let output = """
            FAILED tests/test_core.py::test_limit - assert 3 == 4
              File "pkg/core.py", line 2
                return x >= limit_value
            PASSED tests/test_core.py::test_other
            """
        let excerpt = TaskWriter.excerpt(output, failing: ["tests/test_core.py::test_limit"], mutations: [mutation], mutated: mutated)
        #expect(excerpt.contains("FAILED tests/test_core.py::test_limit - assert 3 == 4"))
        #expect(!excerpt.contains("pkg/core.py") && !excerpt.contains("limit_value"))
        let facts = IssueWriter.Facts(repository: "me/pkg", failing: ["tests/test_core.py::test_limit"], command: "pytest tests/test_core.py",
                                      output: excerpt, passingCount: 5, variant: 0)
        let text = try await IssueWriter.template.write(facts)
        #expect(text.hasPrefix("# `test_limit` fails") && text.contains("pytest tests/test_core.py") && text.contains("- `tests/test_core.py::test_limit`"))
        #expect(!text.contains("{"))
        let prompts = PromptLog()
        let written = try await IssueWriter.model(promptTemplate: "Tests: {failing_tests}\nRun: {command}") { prompt in
            await prompts.add(prompt)
            return "# Limits are off by one\n"
        }.write(facts)
        #expect(written == "# Limits are off by one\n")
        #expect(await prompts.all == ["Tests: - `tests/test_core.py::test_limit`\nRun: pytest tests/test_core.py"])
    }
}

actor PromptLog {
    var all: [String] = []
    func add(_ prompt: String) { all.append(prompt) }
}
