import Synchronization

/// How many more messages this side may send on a stream before the peer grants more.
///
/// A sender with no credit suspends in `acquire()` until CREDIT arrives, the stream ends, or its
/// task is cancelled: this is what stops a fast producer from filling the memory of a slow reader.
public final class OutboundCredit: Sendable {
    private struct State {
        var available: Int
        var waiter: CheckedContinuation<Void, any Error>?
        var failure: (any Error)?
    }

    private let state: Mutex<State>

    public init(initial: Int) {
        state = Mutex(State(available: initial))
    }

    /// Adds `n` messages of credit, waking a waiting sender.
    public func add(_ n: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.available += n
            guard state.available > 0, let waiter = state.waiter else { return nil }
            state.waiter = nil
            state.available -= 1
            return waiter
        }
        waiter?.resume()
    }

    /// Fails the waiting and every later `acquire()` with `error`: the stream is over.
    public func fail(_ error: any Error) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.failure == nil { state.failure = error }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error)
    }

    /// Takes one message of credit, waiting for it if there is none.
    public func acquire() async throws {
        let ready = try state.withLock { state -> Bool in
            if let failure = state.failure { throw failure }
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
        if ready { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    if let failure = state.failure { return .failure(failure) }
                    if state.available > 0 {
                        state.available -= 1
                        return .success(())
                    }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiter = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
