import EventStore
import Synchronization

/// What the store's writer works from: the group-commit queue, and the writer itself when it
/// waits on its connection for the next job (`PostgresEventStore.drain`). Kept under the store's
/// lock.
///
/// A parked writer still counts as draining, so a job queued meanwhile joins it and wakes it
/// instead of starting a second writer.
struct WriterQueue {
    var jobs = GroupCommitQueue<PostgresEventStore.Job>()
    private var parked: Parked?

    mutating func park(_ writer: Parked) { parked = writer }

    /// The parked writer, no longer parked (nil when none was).
    mutating func unpark() -> Parked? {
        defer { parked = nil }
        return parked
    }

    /// `unpark()`, only when `writer` is the one parked (its idle timer fired before a job came).
    mutating func unpark(ifStill writer: Parked) -> Parked? {
        guard parked === writer else { return nil }
        return unpark()
    }

    /// A writer waiting for work: resumed exactly once, with whether jobs came (true) or its wait
    /// ended without any (false).
    final class Parked: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Bool, Never>?
            var onWake: (@Sendable () -> Void)?
        }

        private let state: Mutex<State>

        init(_ continuation: CheckedContinuation<Bool, Never>) {
            state = Mutex(State(continuation: continuation))
        }

        func wake(withWork: Bool = true) {
            let (continuation, onWake) = state.withLock { state in
                defer { state = State() }
                return (state.continuation, state.onWake)
            }
            continuation?.resume(returning: withWork)
            onWake?()
        }

        /// Runs `action` when the writer wakes (at once if it already has).
        func onWake(_ action: @escaping @Sendable () -> Void) {
            let woken = state.withLock { state -> Bool in
                guard state.continuation != nil else { return true }
                state.onWake = action
                return false
            }
            if woken { action() }
        }
    }
}
