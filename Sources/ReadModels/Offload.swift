import Dispatch

/// Runs blocking work (SQLite transactions, PostgreSQL calls made by a blocking connection) on a
/// Dispatch thread, never on the caller's executor: an event loop or a cooperative-pool thread
/// blocked here could be the one the work itself needs.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
