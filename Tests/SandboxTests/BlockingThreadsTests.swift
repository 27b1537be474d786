import Foundation
import Synchronization
import Testing
@testable import Sandbox

/// Blocking work gets a thread of its own at once, and threads are reused rather than created
/// for every command.
@Suite struct BlockingThreadsTests {
    @Test func sequentialWorkReusesOneThread() async throws {
        let threads = BlockingThreads(idleTimeout: 30)
        for index in 0..<50 {
            let answer = try await onOwnThread(of: threads) { index * 2 }
            #expect(answer == index * 2)
        }
        #expect(threads.counts.started == 1)
        #expect(threads.counts.alive == 1)
    }

    /// Work that waits for other work must not queue behind it: 16 pieces that each wait until
    /// all 16 have started finish only if each got a thread at once.
    @Test func workThatWaitsForOtherWorkNeverQueuesBehindIt() async throws {
        let threads = BlockingThreads(idleTimeout: 30)
        for round in 0..<3 {
            let arrived = Arrivals()
            let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        try await onOwnThread(of: threads) {
                            arrived.count.add(1, ordering: .sequentiallyConsistent)
                            let deadline = Date(timeIntervalSinceNow: 10)
                            while arrived.count.load(ordering: .sequentiallyConsistent) < 16 {
                                if Date() > deadline { return false }
                                usleep(200)
                            }
                            return true
                        }
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(finished == 16, "round \(round)")
        }
        // Later rounds ran on the threads the first one started.
        #expect(threads.counts.started <= 16 + 2)
    }

    @Test func idleThreadsEnd() async throws {
        let threads = BlockingThreads(idleTimeout: 0.05)
        _ = try await onOwnThread(of: threads) { 1 }
        let deadline = Date(timeIntervalSinceNow: 5)
        while threads.counts.alive > 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(threads.counts.alive == 0)
        #expect(try await onOwnThread(of: threads) { 2 } == 2)
        #expect(threads.counts.started == 2)
    }

    final class Arrivals: Sendable {
        let count = Atomic<Int>(0)
    }
}
