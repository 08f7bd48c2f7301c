import Dispatch
import Foundation
import Synchronization

/// Where and when the blocking half of a durable write runs: the broker log's fdatasync, the
/// event store's SQLite commit.
///
/// The store decides *what* one commit covers (every write queued before it starts: group
/// commit); a scheduler decides *where* it blocks. The default blocks a background thread, which
/// is right for any caller. A server whose writes come from event loops can do what Redis does
/// with `appendfsync always`: commit on the loop itself once it has handled what its last poll
/// returned, so that no thread is woken to commit and none to resume the writers (see
/// RPCHosting's `EventLoopCommitScheduler`).
public protocol CommitScheduler: Sendable {
    /// Runs `commit` soon, on a thread that may block for as long as the disk takes. `commit`
    /// may call `schedule` again, when writes arrived while it ran.
    func schedule(_ commit: @escaping @Sendable () -> Void)

    /// `schedule(_:)`, told how many writes the commit will likely cover (those waiting, or what
    /// the store's recent commits took), for a scheduler that puts a lone write's commit
    /// elsewhere than a group's.
    func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void)
}

extension CommitScheduler {
    public func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void) { schedule(commit) }
}

/// Commits a lone write where one scheduler puts it, and a group of writes where another does.
///
/// Why: where a commit is best run depends on how many writes it covers. A lone write (one
/// client, or a quiet moment) waits for the whole path, so a hand-off to a thread and back (two
/// wake-ups, each tens of microseconds on a VM) is a large share of its time; committing on the
/// event loop that wrote saves both. A group comes from many callers, and committing on a thread
/// lets the loops decide the next group while the disk works. The event store takes this one with
/// the event loop for the lone write and a thread for the group (`command-service --commit-on
/// adaptive`, the default).
public struct AdaptiveCommitScheduler: CommitScheduler {
    let lone: any CommitScheduler
    let group: any CommitScheduler

    public init(lone: any CommitScheduler, group: any CommitScheduler) {
        self.lone = lone
        self.group = group
    }

    /// A caller that does not say how many writes the commit covers gets the group's place, the
    /// one that never blocks a loop.
    public func schedule(_ commit: @escaping @Sendable () -> Void) { group.schedule(commit) }

    public func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void) {
        (writes <= 1 ? lone : group).schedule(commit)
    }
}

/// Commits on a thread kept for blocking work (`BlockingQueues`).
public struct BackgroundCommitScheduler: CommitScheduler {
    public init() {}

    public func schedule(_ commit: @escaping @Sendable () -> Void) {
        BlockingQueues.async(commit)
    }
}

/// Threads for work that blocks on disk (an fdatasync, a SQLite commit or read), apart from the
/// ones Swift Concurrency's default executor runs tasks on.
///
/// Why not Dispatch's global queue: on Linux the default executor *is* that pool, sized to the
/// CPUs, so every thread blocked there on disk is one fewer for tasks; with two CPUs, two slow
/// reads stop every task in the process. Why not a set of serial queues: work given to a busy one
/// waits behind it (a healthy partition's sync behind a stalled one's). Here work goes to an idle
/// thread, and a new thread starts when none is idle, up to `maxThreads`; threads stay for the
/// next work.
public enum BlockingQueues {
    /// Most threads; beyond it work waits for the first thread free.
    public static let maxThreads = 64

    private struct State {
        var work: [@Sendable () -> Void] = []
        var idle = 0
        var threads = 0
    }

    private static let state = Mutex(State())
    private static let wakeUps = DispatchSemaphore(value: 0)

    /// Runs `work` on a thread kept for blocking work.
    public static func async(_ work: @escaping @Sendable () -> Void) {
        let startThread = state.withLock { state -> Bool in
            state.work.append(work)
            // Enough idle threads for what waits: one of them takes it.
            guard state.idle < state.work.count, state.threads < maxThreads else { return false }
            state.threads += 1
            return true
        }
        if startThread {
            let thread = Thread { runWorker() }
            thread.name = "blocking-disk-work"
            thread.start()
        }
        wakeUps.signal()
    }

    /// One piece of work per wake-up (one signal per piece), so two pieces never queue on one
    /// thread while another is idle.
    private static func runWorker() {
        while true {
            state.withLock { $0.idle += 1 }
            wakeUps.wait()
            let work = state.withLock { state -> (@Sendable () -> Void)? in
                state.idle -= 1
                return state.work.isEmpty ? nil : state.work.removeFirst()
            }
            work?()
        }
    }
}

/// Runs commits where `preferred` puts them (an event loop) while they are quick, and where
/// `fallback` does (a thread) from the moment one stalled (took longer than `stall`) or the
/// recent ones averaged more than `slowCommit`, until neither has happened for `recovery` and
/// none still runs on the fallback. Reads that may block on disk go through `run` on the same terms (the read
/// models' queries).
///
/// Why: committing on the event loop that wrote saves two thread wake-ups per commit, which is
/// most of a lone write's time when the disk syncs in a tenth of a millisecond; but while the
/// loop blocks on the disk, every other connection it serves waits. On a disk that has become
/// slow (a busy or failing device, a throttled volume) that wait would be the disk's, for calls
/// that never touch it (a fetch, a produce to another partition). So the first slow commit
/// moves the next ones to a thread, where the wake-ups cost nothing next to the disk, and they
/// stay there while any commit is still slow. At most one slow commit blocks a loop per slow
/// spell. One guard serves a whole server: a disk slow for one file is taken as slow for all.
public final class SlowDiskGuard: CommitScheduler {
    private let preferred: any CommitScheduler
    private let fallback: any CommitScheduler
    private let slowCommitNanoseconds: UInt64
    private let recoveryNanoseconds: UInt64
    /// Uptime (ns) until which commits go to `fallback`.
    private let avoidPreferredUntil = Atomic<UInt64>(0)
    /// Work sent to `fallback` and not finished: while any is, the disk is taken as still slow
    /// (a slow spell that outlasts `recovery` must not send the next commit back to the loop).
    private let onFallback = Atomic<Int>(0)
    /// Monotonic nanoseconds (a test's own clock, or the system's uptime).
    private let now: @Sendable () -> UInt64

    /// A single piece of work longer than this is a stall: the next go to the fallback at once.
    private let stallNanoseconds: UInt64
    /// The recent average duration (ns, an exponential moving average weighing the last ~8).
    private let average = Mutex<Double>(0)

    /// - Parameters:
    ///   - slowCommit: the recent average above which the disk counts as slow. An average, so
    ///     that the ordinary jitter of fdatasync (a spike of a few ms among 0.1 ms syncs) does not
    ///     send a healthy disk's commits to a thread.
    ///   - stall: a single commit longer than this counts at once.
    ///   - recovery: how long work stays on the fallback after the last slow sign.
    public init(
        preferred: any CommitScheduler, fallback: any CommitScheduler = BackgroundCommitScheduler(), slowCommit: Duration = .milliseconds(5),
        stall: Duration = .milliseconds(50), recovery: Duration = .seconds(5),
        now: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }
    ) {
        self.now = now
        self.preferred = preferred
        self.fallback = fallback
        slowCommitNanoseconds = Self.nanoseconds(slowCommit)
        stallNanoseconds = Self.nanoseconds(stall)
        recoveryNanoseconds = Self.nanoseconds(recovery)
    }

    /// Whether commits go to the fallback now (the disk was slow lately).
    public var avoidingPreferred: Bool {
        onFallback.load(ordering: .relaxed) > 0 || now() < avoidPreferredUntil.load(ordering: .relaxed)
    }

    public func schedule(_ commit: @escaping @Sendable () -> Void) {
        schedule(covering: 1, commit)
    }

    public func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void) {
        if avoidingPreferred {
            onFallback.add(1, ordering: .relaxed)
            fallback.schedule(covering: writes) { [self] in
                measured(commit)
                onFallback.subtract(1, ordering: .relaxed)
            }
        } else {
            preferred.schedule(covering: writes) { [self] in measured(commit) }
        }
    }

    /// Runs `work` on the caller's thread while the disk has been quick (timing it), else on the
    /// fallback, and returns its result: for reads an event loop would otherwise block on.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard avoidingPreferred else { return try measured(work) }
        onFallback.add(1, ordering: .relaxed)
        return try await withCheckedThrowingContinuation { continuation in
            fallback.schedule { [self] in
                let result = Result { try measured(work) }
                onFallback.subtract(1, ordering: .relaxed)
                continuation.resume(with: result)
            }
        }
    }

    private func noteDuration(since started: UInt64) {
        let ended = now()
        let took = ended - started
        let recent = average.withLock { average in
            average += (Double(took) - average) / 8
            return average
        }
        if took > stallNanoseconds || recent > Double(slowCommitNanoseconds) {
            avoidPreferredUntil.store(ended + recoveryNanoseconds, ordering: .relaxed)
        }
    }

    /// Runs `body` and notes how long it took.
    private func measured<T>(_ body: () throws -> T) rethrows -> T {
        let started = now()
        defer { noteDuration(since: started) }
        return try body()
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(0, duration.components.seconds)) * 1_000_000_000 + UInt64(max(0, duration.components.attoseconds)) / 1_000_000_000
    }
}
