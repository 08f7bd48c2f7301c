import EventStore
import NIOCore

/// What the store's writer works from: the group-commit queue, and the writer itself when it
/// waits on its connection for the next job (`PostgresEventStore.drain`). Pure state, kept under
/// the store's lock.
///
/// A parked writer still counts as draining, so a job queued meanwhile joins it and wakes it
/// instead of starting a second writer. One idle timer serves many waits: it is armed by a park
/// when none is armed, and when it fires early (the writer worked and parked again since) it
/// asks to be armed again for the rest, so a steady client costs one timer a second, not one per
/// command (a timer armed and cancelled per batch was about 16,000 instructions of each).
struct WriterQueue {
    typealias Writer = CheckedContinuation<Bool, Never>

    var jobs = GroupCommitQueue<PostgresEventStore.Job>()
    private var parked: Writer?
    private var parkedAt: ContinuousClock.Instant?
    /// An idle timer will fire: a park needs none of its own.
    private(set) var idleTimerArmed = false
    /// The event loop of the caller that last woke the writer (nil: not on a loop, or not known).
    private(set) var waker: (any EventLoop)?

    /// The writer waits on its connection for a job.
    var isParked: Bool { parked != nil }

    /// The writer waits from `now`; true when the caller must arm the idle timer.
    mutating func park(_ writer: Writer, at now: ContinuousClock.Instant) -> Bool {
        parked = writer
        parkedAt = now
        defer { idleTimerArmed = true }
        return !idleTimerArmed
    }

    /// The parked writer, no longer parked (nil when none was), to resume; `caller` is the event
    /// loop of the caller that wakes it, kept as `waker`.
    mutating func unpark(by caller: (any EventLoop)? = nil) -> Writer? {
        defer { (parked, parkedAt) = (nil, nil) }
        if parked != nil { waker = caller }
        return parked
    }

    enum IdleCheck {
        /// The writer waited `release` with nothing to do: resume it to hand its connection back.
        case release(Writer)
        /// The writer parked again since the timer was armed: fire again after this.
        case checkAgain(after: Duration)
        /// No writer waits; the next park arms a timer.
        case stop
    }

    /// The idle timer fired at `now`.
    mutating func idleTimerFired(at now: ContinuousClock.Instant, release: Duration) -> IdleCheck {
        guard parked != nil, let parkedAt else {
            idleTimerArmed = false
            return .stop
        }
        let idle = now - parkedAt
        guard idle >= release else { return .checkAgain(after: release - idle) }
        idleTimerArmed = false
        return unpark().map { .release($0) } ?? .stop
    }
}
