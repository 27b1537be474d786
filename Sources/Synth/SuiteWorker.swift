import Foundation
import Logging
import Sandbox
import Scoring
import WardenCore
import Workspace

/// One checkout of the source and the jail over it: runs the suite with mutations planted,
/// and puts the original bytes back after every run.
final class SuiteWorker: @unchecked Sendable {
    let checkout: URL
    let shell: ShellSession
    private let source: SynthSource

    init(source: SynthSource, work: URL, profile: SandboxProfile) throws {
        self.source = source
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        checkout = work.appendingPathComponent("checkout")
        try WorkspaceTracker.materialize(source: source.checkout, commit: source.commit, into: checkout)
        shell = ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout, spillDirectory: work.path))
    }

    deinit { shell.close() }

    /// The original bytes of `file` at the passing state.
    func original(_ file: String) throws -> Data {
        let url = source.checkout.appendingPathComponent(file)
        do { return try Data(contentsOf: url) } catch {
            throw WardenError("synth.read", "cannot read a source file: \(error.localizedDescription)", context: url.path)
        }
    }

    /// Runs `command` with `mutations` planted (none: the passing state).
    func run(_ mutations: [Mutation], command: String, timeout: Double) async throws -> SuiteRunResult {
        let files = try Mutation.mutatedFiles(mutations, original: original)
        for (file, data) in files { try data.write(to: checkout.appendingPathComponent(file)) }
        defer {
            for file in files.keys {
                do { try original(file).write(to: checkout.appendingPathComponent(file)) } catch {
                    Logger(label: "warden.synth").error("cannot put back \(file) after a mutant: \(error)")
                }
            }
        }
        return try await Evaluator.runSuite(command, parser: source.logParser, in: shell, timeout: timeout)
    }
}

/// Hands each worker to one job at a time.
actor WorkerPool {
    private var idle: [SuiteWorker]
    private var waiting: [CheckedContinuation<SuiteWorker, Never>] = []

    init(_ workers: [SuiteWorker]) { idle = workers }

    func take() async -> SuiteWorker {
        if let worker = idle.popLast() { return worker }
        return await withCheckedContinuation { waiting.append($0) }
    }

    func give(_ worker: SuiteWorker) {
        if waiting.isEmpty { idle.append(worker) } else { waiting.removeFirst().resume(returning: worker) }
    }

    func with<T: Sendable>(_ body: @Sendable (SuiteWorker) async throws -> T) async throws -> T {
        let worker = await take()
        do {
            let result = try await body(worker)
            give(worker)
            return result
        } catch {
            give(worker)
            throw error
        }
    }
}
