import Foundation
import Sandbox
@testable import Synth
import Testing
import WardenCore
import Workspace

/// `warden_mutate.py` run for real in the tests jail: every kind, each diff exactly the node's span.
@Suite("synth: Python mutator")
struct PythonMutatorTests {
    static let module = """
        def clamp(value, low=0, high=10, strict=False):
            if value < low:
                return low
            if value > high and high != 0:
                return high
            return value


        def total(items):
            result = 0
            count = len(items)
            for index in range(count):
                result += items[index] - 1
            if result:
                sign = 1
            else:
                sign = -1
            return result * sign
        """ + "\n"

    /// The lines removed and added by `mutation`, as a unified diff shows them.
    static func changes(_ mutation: Mutation, in source: String) throws -> (removed: [String], added: [String]) {
        let original = Data(source.utf8)
        let mutated = try #require(mutation.applied(to: original))
        let patch = try TextDiff.patch(path: "m.py", old: original, new: mutated)
        let lines = patch.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("---") && !$0.hasPrefix("+++") }
        return (lines.filter { $0.hasPrefix("-") }.map { String($0.dropFirst()) }, lines.filter { $0.hasPrefix("+") }.map { String($0.dropFirst()) })
    }

    func mutations(of source: String) async throws -> [Mutation] {
        let scratch = try SynthFixtures.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        try SynthFixtures.write(["m.py": source], in: scratch)
        let shell = ShellSession(configuration: try JailConfiguration(profile: try SynthFixtures.profile(), checkout: scratch, spillDirectory: scratch.path))
        defer { shell.close() }
        return try await PythonMutator().mutations(of: ["m.py"], checkout: scratch, shell: shell)
    }

    @Test("each kind's edit is the minimal diff: exactly the mutated lines change")
    func everyKind() async throws {
        let found = try await mutations(of: Self.module)
        func expect(_ kind: String, removed: [String], added: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let matching = try found.filter { $0.kind == kind }.map { try Self.changes($0, in: Self.module) }
            #expect(matching.contains { $0.removed == removed && $0.added == added },
                    "no \(kind) mutant turns \(removed) into \(added); found: \(matching)", sourceLocation: sourceLocation)
        }
        try expect("flip_comparison", removed: ["    if value < low:"], added: ["    if value >= low:"])
        try expect("flip_comparison", removed: ["    if value > high and high != 0:"], added: ["    if value > high and high == 0:"])
        try expect("flip_boolean", removed: ["    if value > high and high != 0:"], added: ["    if value > high or high != 0:"])
        try expect("swap_operands", removed: ["    if value < low:"], added: ["    if low < value:"])
        try expect("swap_operands", removed: ["        result += items[index] - 1"], added: ["        result += 1 - items[index]"])
        try expect("shift_constant", removed: ["    result = 0"], added: ["    result = 1"])
        try expect("shift_range_bound", removed: ["    for index in range(count):"], added: ["    for index in range(count - 1):"])
        try expect("change_default", removed: ["def clamp(value, low=0, high=10, strict=False):"], added: ["def clamp(value, low=0, high=11, strict=False):"])
        try expect("change_default", removed: ["def clamp(value, low=0, high=10, strict=False):"], added: ["def clamp(value, low=0, high=10, strict=True):"])
        try expect("remove_branch", removed: ["    if value < low:", "        return low"], added: [])
        try expect("remove_branch", removed: ["    else:", "        sign = -1"], added: [])
        try expect("remove_early_return", removed: ["        return high"], added: ["        pass"])
        try expect("remove_loop", removed: ["    for index in range(count):", "        result += items[index] - 1"], added: [])
        try expect("remove_assignment", removed: ["    count = len(items)"], added: [])
        try expect("invert_if_else", removed: ["        sign = 1", "    else:"], added: ["    else:", "        sign = 1"])
        try expect("swap_statements", removed: ["    result = 0"], added: ["    result = 0"])
        #expect(Set(found.map(\.kind)).count == 12)
        #expect(found.allSatisfy { $0.file == "m.py" })
        #expect(found.first { $0.kind == "remove_loop" }?.function == "total")
        #expect(found.first { $0.kind == "flip_boolean" }?.function == "clamp")
    }

    @Test("every mutant parses and differs from the original; a file that does not parse is skipped, not fatal")
    func onlyValidMutants() async throws {
        let scratch = try SynthFixtures.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        try SynthFixtures.write(["good.py": "def f(a, b):\n    return a - b\n", "broken.py": "def f(:\n"], in: scratch)
        let shell = ShellSession(configuration: try JailConfiguration(profile: try SynthFixtures.profile(), checkout: scratch, spillDirectory: scratch.path))
        defer { shell.close() }
        let found = try await PythonMutator().mutations(of: ["good.py", "broken.py"], checkout: scratch, shell: shell)
        #expect(found.map(\.kind) == ["swap_operands"])
        #expect(found.first?.replacement == "b - a")
    }
}
