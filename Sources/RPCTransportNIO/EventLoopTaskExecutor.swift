import NIOCore
import NIOPosix
@_spi(ExperimentalScheduling) import _Concurrency

/// An event loop as a Swift `TaskExecutor`: a task that prefers it runs its jobs on that loop,
/// whichever thread resumed it, and sleeps on the loop's own timers.
///
/// Why not the loops as the global executor alone (`ConcurrencyOnEventLoops`): that keeps a job
/// on the loop that enqueues it, but a continuation resumed from a thread that is no loop (the
/// event store's writer, the log's syncer) lands on an arbitrary loop, and the reply then has to
/// hop to the connection's loop: two thread wake-ups where one would do. Each connection's calls
/// prefer its own loop.
///
/// Why it schedules too (`SchedulingExecutor`): on Linux a `Task.sleep` is otherwise a Dispatch
/// timer, armed and disarmed by Dispatch's own threads: two thread wake-ups for a sleep that is
/// usually cancelled (a connection pool arms idle and keep-alive timers on every lease and
/// release). A task that prefers this executor, and every child task it starts, sleeps on the
/// loop's timer heap instead. `SchedulingExecutor` is Swift 6.3's experimental SPI; the runtime
/// asks a task's preferred executor for it (checked on 6.3: `Tests/RPCTransportNIOTests`).
public enum EventLoopTasks {
    /// The executor a task prefers to run, and sleep, on `loop`.
    public static func executor(for loop: any EventLoop) -> any TaskExecutor { EventLoopTaskExecutor(loop) }

    /// An executor that pins nothing: each job runs on the loop it is enqueued from (any loop of
    /// `group` when enqueued elsewhere), as `ConcurrencyOnEventLoops` runs global jobs, and each
    /// sleep is that loop's timer. For a long-running task whose work follows its callers (a
    /// connection pool's): pinned to one loop, every caller on another would wake it.
    public static func anyLoop(of group: MultiThreadedEventLoopGroup = .singleton) -> any TaskExecutor {
        EventLoopTaskExecutor(group)
    }
}

/// Internal: a public type may not conform to an SPI protocol.
final class EventLoopTaskExecutor: TaskExecutor, SchedulingExecutor {
    /// One loop, or a group whose `any()` is the calling loop when there is one.
    private let loops: any EventLoopGroup

    init(_ loops: any EventLoopGroup) {
        self.loops = loops
    }

    private var eventLoop: any EventLoop { loops.any() }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        guard let delay = delay as? Duration else {
            // A clock of another kind of duration (a test's): the global executor keeps its time;
            // were it unable to, the job runs now rather than never.
            if let global = globalConcurrentExecutor as? any SchedulingExecutor {
                global.enqueue(job, after: delay, tolerance: tolerance, clock: clock)
            } else {
                enqueue(job)
            }
            return
        }
        let job = UnownedJob(job)
        let nanoseconds = Self.saturatingNanoseconds(delay)
        eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// A delay in nanoseconds, 0 when negative and `Int64.max` past it: unlike WallTime's
    /// `wholeNanoseconds`, a task's sleep "for ever" (centuries) must neither trap a server nor
    /// wrap round to a sleep that ends at once.
    static func saturatingNanoseconds(_ delay: Duration) -> Int64 {
        let (seconds, attoseconds) = delay.components
        guard seconds >= 0 else { return 0 }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, carried) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow || carried ? .max : sum
    }

    func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        enqueue(job, after: clock.now.duration(to: instant), tolerance: tolerance, clock: clock)
    }
}
