import NIOPosix
import Testing

@testable import PostgresEventStore

/// The PostgreSQL store's writer waits between batches under one idle timer, armed by a park
/// when none is, checked again when it fires early, dropped when no writer waits.
struct WriterQueueTests {
    @Test func oneIdleTimerServesManyWaitsAndReleasesTheWriterOnlyAfterAFullIdleWait() async {
        let start = ContinuousClock.now
        let release = Duration.seconds(1)
        var queue = WriterQueue()

        let released: Bool = await withCheckedContinuation { (writer: WriterQueue.Writer) in
            let armsFirst = queue.park(writer, at: start)
            #expect(armsFirst, "the first park arms the timer")
            let woken = queue.unpark()
            #expect(woken != nil, "a job came at once")
            let armsAgain = queue.park(writer, at: start + .milliseconds(300))
            #expect(!armsAgain, "parked again at 0.3 s: the armed timer serves it")
            // The timer fires 1 s after it was armed: the writer has waited only 0.7 s.
            guard case .checkAgain(let rest) = queue.idleTimerFired(at: start + release, release: release) else {
                Issue.record("an early fire asks to be armed again")
                return writer.resume(returning: true)
            }
            #expect(rest == .milliseconds(300))
            #expect(queue.idleTimerArmed)
            guard case .release(let idle) = queue.idleTimerFired(at: start + release + rest, release: release) else {
                Issue.record("after a full idle wait the writer is released")
                return writer.resume(returning: true)
            }
            #expect(!queue.idleTimerArmed)
            let again = queue.unpark()
            #expect(again == nil, "released once")
            idle.resume(returning: false)
        }
        #expect(released == false)

        // A timer that fires while no writer waits stops; the next park arms another.
        guard case .stop = queue.idleTimerFired(at: start + .seconds(5), release: release) else {
            Issue.record("no writer waits: the timer stops")
            return
        }
        let woken: Bool = await withCheckedContinuation { (writer: WriterQueue.Writer) in
            let arms = queue.park(writer, at: start + .seconds(6))
            #expect(arms, "disarmed: this park arms a timer")
            queue.unpark()?.resume(returning: true)
        }
        #expect(woken)
    }
}

/// The writer learns its callers' loop from the caller that wakes it, and only from a wake.
struct WriterQueueWakerTests {
    @Test func theCallerThatWakesAParkedWriterIsItsWakerAndNoOtherCallerIs() async {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        var queue = WriterQueue()
        #expect(queue.unpark(by: loops[0]) == nil, "no writer waits")
        #expect(queue.waker == nil, "a caller that woke nothing is not a waker")
        let woken: Bool = await withCheckedContinuation { (writer: WriterQueue.Writer) in
            _ = queue.park(writer, at: .now)
            #expect(queue.isParked)
            queue.unpark(by: loops[loops.count - 1])?.resume(returning: true)
        }
        #expect(!queue.isParked)
        #expect(woken)
        #expect(queue.waker === loops[loops.count - 1])
        #expect(queue.unpark(by: loops[0]) == nil, "woken already")
        #expect(queue.waker === loops[loops.count - 1], "kept until the next wake")
    }
}

/// The writer moves its connection to its callers' loop only after a run of wake-ups from there.
struct WriterLoopAffinityTests {
    @Test func movesAfterARunOfForeignWakesAndAHomeWakeStartsTheCountAgain() {
        var affinity = WriterLoopAffinity()
        var moves: [Bool] = []
        for _ in 1..<WriterLoopAffinity.wakesBeforeMove { moves.append(affinity.woke(onConnectionLoop: false)) }
        moves.append(affinity.woke(onConnectionLoop: true))  // one wake from the connection's loop
        #expect(!moves.contains(true), "one wake short of a run, then the count starts again")
        moves = []
        for _ in 1...WriterLoopAffinity.wakesBeforeMove { moves.append(affinity.woke(onConnectionLoop: false)) }
        #expect(moves == Array(repeating: false, count: WriterLoopAffinity.wakesBeforeMove - 1) + [true], "a full run from another loop")
    }
}
