import CommitScheduling
import NIOCore
import NIOPosix
import RPCHosting
import Synchronization
import Testing

@Suite struct EventLoopCommitSchedulerTests {
    /// On a loop, the commit runs on that same loop, after what was already queued there (the
    /// other calls its last poll made ready), as Redis syncs in `beforeSleep`.
    @Test func aCommitAskedForOnAnEventLoopRunsOnItAfterWhatIsAlreadyQueued() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next()
        let order = Mutex<[String]>([])
        let ranOnTheLoop = try await loop.submit { () -> EventLoopFuture<Bool> in
            let promise = loop.makePromise(of: Bool.self)
            loop.execute { order.withLock { $0.append("queued before") } }
            EventLoopCommitScheduler().schedule {
                order.withLock { $0.append("sync") }
                promise.succeed(loop.inEventLoop)
            }
            order.withLock { $0.append("the caller goes on") }
            return promise.futureResult
        }.flatMap { $0 }.get()
        try await group.shutdownGracefully()
        #expect(ranOnTheLoop)
        #expect(order.withLock { $0 } == ["the caller goes on", "queued before", "sync"])
    }

    /// Off any loop (a test, a timer on another thread) it syncs on a background thread.
    @Test func aCommitAskedForOffAnyEventLoopRunsOnABackgroundThread() async throws {
        let onALoop = await withCheckedContinuation { continuation in
            EventLoopCommitScheduler().schedule { continuation.resume(returning: MultiThreadedEventLoopGroup.currentEventLoop != nil) }
        }
        #expect(!onALoop)
    }
}
