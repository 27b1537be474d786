import Foundation

/// Runs blocking work (a jail's I/O loop, materializing a checkout, scanning a work tree) on a
/// thread of its own, so it never holds one of the few threads of Swift's concurrency pool
/// while other episodes wait for theirs.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}
