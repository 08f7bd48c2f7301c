import NIOCore

/// An event loop as a Swift `TaskExecutor`: a task that prefers it runs its jobs on that loop,
/// whichever thread resumed it.
///
/// Why not the loops as the global executor alone (`ConcurrencyOnEventLoops`): that keeps a job
/// on the loop that enqueues it, but a continuation resumed from a thread that is no loop (the
/// event store's writer, the log's syncer) lands on an arbitrary loop, and the reply then has to
/// hop to the connection's loop: two thread wake-ups where one would do. Each connection's calls
/// prefer its own loop.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
