import Foundation

/// Runs blocking work (a jail's I/O loop, materializing a checkout, scanning a work tree) on a
/// thread of its own, so it never holds one of the few threads of Swift's concurrency pool
/// while other episodes wait for theirs.
///
/// The thread is one of ``BlockingThreads``: a new thread per call cost a clone, a stack
/// mapping and its unmapping for every command an agent runs.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await onOwnThread(of: .shared, body)
}

func onOwnThread<T: Sendable>(of threads: BlockingThreads, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        threads.run {
            let result = Result { try body() }
            return { continuation.resume(with: result) }
        }
    }
}

/// Threads kept for blocking work: each piece of work gets a thread to itself at once, an idle
/// one when there is one and a new one otherwise, never a queue behind busy ones (work may wait
/// for other work, such as a jail's start beside the checkout it will show). A thread idle for
/// `idleTimeout` ends.
final class BlockingThreads: @unchecked Sendable {
    static let shared = BlockingThreads(idleTimeout: 10)

    private let idleTimeout: TimeInterval
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var pending: [@Sendable () -> @Sendable () -> Void] = []
    private var idle = 0
    private var threads = 0
    private var started = 0

    init(idleTimeout: TimeInterval) {
        self.idleTimeout = idleTimeout
    }

    /// Runs `work` on a thread of its own, then the completion it returns (which resumes
    /// whoever waits for the work) once that thread counts as free again.
    func run(_ work: @escaping @Sendable () -> @Sendable () -> Void) {
        condition.lock()
        pending.append(work)
        // Every pending piece needs a waiter of its own: an idle thread counts only while there
        // are no more pending pieces than idle threads.
        let wakeIdle = idle >= pending.count
        if !wakeIdle {
            threads += 1
            started += 1
        }
        condition.unlock()
        if wakeIdle {
            condition.signal()
        } else {
            let thread = Thread { [self] in serve() }
            thread.start()
        }
    }

    /// Runs `work`, which nobody waits for, on a thread of its own.
    func detach(_ work: @escaping @Sendable () -> Void) {
        run { () -> @Sendable () -> Void in
            work()
            return {}
        }
    }

    /// The number of threads alive and how many were ever started (for tests).
    var counts: (alive: Int, started: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (threads, started)
    }

    private func serve() {
        condition.lock()
        while true {
            if !pending.isEmpty {
                var work = Optional(pending.removeFirst())
                condition.unlock()
                var finish = work?() ?? {}
                work = nil
                // Free before the waiting task resumes: the work it sends next (the next
                // command of an episode) finds this thread instead of starting another, and
                // this thread looks at the pending work under the lock before it waits.
                condition.lock()
                idle += 1
                condition.unlock()
                finish()
                finish = {}  // whatever it held is released here, not under the lock
                condition.lock()
                idle -= 1
                continue
            }
            idle += 1
            let signaled = condition.wait(until: Date(timeIntervalSinceNow: idleTimeout))
            idle -= 1
            if !signaled && pending.isEmpty {
                threads -= 1
                condition.unlock()
                return
            }
        }
    }
}
