import EventStore
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization
import WallTime

// Leasing a pooled connection within a bounded wait: what every statement of the store goes through.

extension PostgresEventStore {
    /// Runs `body` on a connection of `client`'s pool (the store's by default), waiting at most
    /// `options.connectionWait` for one.
    ///
    /// Not a task group: the pool's lease does not end when cancelled, and a group would wait for
    /// it. The lease goes on in a task of its own; if the wait ends first, the caller gets
    /// `unavailable` at once and the body never runs (the lease, when it comes, is handed back).
    func withConnection<T: Sendable>(
        from client: PostgresClient? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let race = LeaseRace<T>()
        let wait = databaseDown.withLock { $0 } ? options.connectionWaitWhileDown : options.connectionWait
        return try await withCheckedThrowingContinuation { continuation in
            race.begin(continuation)
            let client = client ?? self.client
            let timer = Self.timer(after: wait) {
                if race.timeOut(EventStoreError.unavailable("no connection to PostgreSQL within \(wait) (is the database up?)")) {
                    self.databaseDown.withLock { $0 = true }
                }
            }
            Task {
                do {
                    let value = try await client.withConnection { connection -> T? in
                        timer.cancel()
                        guard race.claimForBody() else { return nil }
                        self.databaseDown.withLock { $0 = false }
                        return try await body(connection)
                    }
                    if let value { race.finish(.success(value)) }
                } catch {
                    race.finish(.failure(error))
                }
                timer.cancel()
            }
        }
    }

    /// Runs `fire` after `delay` unless cancelled first; on the caller's event loop when it runs
    /// on one. Why not a task sleeping: on Linux a sleeping task's wake-up is a Dispatch timer,
    /// armed and disarmed by Dispatch's own threads, and every lease sets one (for a wait that
    /// almost never ends in a timeout): profiled at one client, Dispatch's threads took a fifth of
    /// the process's CPU samples, and the timer 2.7 of its 8.6 context switches per command. An
    /// event loop's timer is an entry in the loop's own heap.
    private static func timer(after delay: Duration, _ fire: @escaping @Sendable () -> Void) -> any LeaseTimer {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            return loop.scheduleTask(in: .nanoseconds(delay.wholeNanoseconds)) { fire() }
        }
        return Task {
            guard (try? await Task.sleep(for: delay)) != nil else { return }
            fire()
        }
    }
}

/// Who answers a `withConnection` call: the body once it holds a connection, or the wait if it
/// ends before any connection came. Exactly one resumes the caller.
private final class LeaseRace<T: Sendable>: Sendable {
    private enum State {
        case waiting(CheckedContinuation<T, any Error>?)
        case running(CheckedContinuation<T, any Error>)
        case over
    }

    private let state = Mutex(State.waiting(nil))

    func begin(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0 = .waiting(continuation) }
    }

    /// The body may run: no answer was given yet.
    func claimForBody() -> Bool {
        state.withLock { state in
            guard case .waiting(let continuation?) = state else { return false }
            state = .running(continuation)
            return true
        }
    }

    func finish(_ result: Result<T, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            switch state {
            case .waiting(let continuation):
                state = .over
                return continuation
            case .running(let continuation):
                state = .over
                return continuation
            case .over:
                return nil
            }
        }
        continuation?.resume(with: result)
    }

    /// The wait ended: answers `error` unless the body already holds a connection; true when it did.
    @discardableResult
    func timeOut(_ error: any Error) -> Bool {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard case .waiting(let continuation?) = state else { return nil }
            state = .over
            return continuation
        }
        continuation?.resume(throwing: error)
        return continuation != nil
    }
}

/// A timer `withConnection` cancels once it holds a connection.
protocol LeaseTimer: Sendable {
    func cancel()
}

extension Scheduled: LeaseTimer where T == Void {}
extension Task: LeaseTimer where Success == Void, Failure == Never {}
