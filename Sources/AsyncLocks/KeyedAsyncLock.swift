import Synchronization

/// Mutual exclusion for async code, per key: a body runs while holding its key, across
/// suspension points; bodies on other keys never wait for it. Waiters are served first come,
/// first served, and a waiter whose task is cancelled leaves the queue at once with
/// `CancellationError` (a body already running is not interrupted).
///
/// Used where work must take turns across awaits: commands on one stream within the process
/// (`AggregateRepository`), and the read models' single writer (`ReadModelStore`, one key).
public final class KeyedAsyncLock<Key: Hashable & Sendable>: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        /// A key present here is held; its array holds the waiters in arrival order.
        var held: [Key: [Waiter]] = [:]
        var nextId: UInt64 = 0
    }

    private enum Outcome { case acquired, queued, cancelled }

    private let state = Mutex(State())

    public init() {}

    /// Runs `body` holding `key`; throws `CancellationError` without running it when the task is
    /// cancelled before it gets the key.
    public func withLock<T>(_ key: Key, _ body: () async throws -> T) async throws -> T {
        try await acquire(key)
        defer { release(key) }
        return try await body()
    }

    /// Whether `key` is held now (for tests and diagnostics).
    public func isHeld(_ key: Key) -> Bool { state.withLock { $0.held[key] != nil } }

    /// How many wait for `key` now.
    func waiting(_ key: Key) -> Int { state.withLock { $0.held[key]?.count ?? 0 } }

    private func acquire(_ key: Key) async throws {
        if Task.isCancelled { throw CancellationError() }
        // A free key is taken without suspending: a continuation and a cancellation handler
        // made, the task suspended and enqueued again on its executor, were about a fifth of an
        // uncontended command's instructions. A free key has no waiters, so nobody is passed.
        let id = state.withLock { state -> UInt64? in
            guard state.held[key] != nil else {
                state.held[key] = []
                return nil
            }
            defer { state.nextId &+= 1 }
            return state.nextId
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Outcome in
                    if Task.isCancelled { return .cancelled }
                    guard state.held[key] != nil else {
                        state.held[key] = []
                        return .acquired
                    }
                    state.held[key]!.append(Waiter(id: id, continuation: continuation))
                    return .queued
                }
                switch outcome {
                case .acquired: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .queued: break
                }
            }
        } onCancel: {
            // Still waiting: leave the queue. Already handed the key: keep it (the caller's
            // defer releases it), as if cancelled just after acquiring.
            let removed = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.held[key]?.firstIndex(where: { $0.id == id }) else { return nil }
                return state.held[key]!.remove(at: index).continuation
            }
            removed?.resume(throwing: CancellationError())
        }
    }

    /// Hands the key to the next waiter, if any, else frees it.
    private func release(_ key: Key) {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard var waiters = state.held[key], !waiters.isEmpty else {
                state.held[key] = nil
                return nil
            }
            let next = waiters.removeFirst()
            state.held[key] = waiters
            return next.continuation
        }
        next?.resume()
    }
}

/// A `KeyedAsyncLock` with one key: one body at a time.
public final class AsyncLock: Sendable {
    private let lock = KeyedAsyncLock<Int>()

    public init() {}

    public func withLock<T>(_ body: () async throws -> T) async throws -> T {
        try await lock.withLock(0, body)
    }
}
