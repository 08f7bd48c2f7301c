import EventStore
import Testing

/// The queue in front of a store's writer, without a store.
@Suite struct GroupCommitQueueTests {
    @Test func theFirstJobStartsADrainAndLaterOnesJoinIt() {
        var queue = GroupCommitQueue<Int>()
        let r1 = queue.enqueue(1)
        #expect(r1 == .startDrain)
        let r2 = queue.enqueue(2)
        #expect(r2 == .joined)
        let r3 = queue.enqueue(3)
        #expect(r3 == .joined)
        let r4 = queue.take(upTo: 2)
        #expect(r4 == [1, 2])
        let r5 = queue.roundFinished()
        #expect(r5, "a job still waits: the drain goes on")
        let r6 = queue.enqueue(4)
        #expect(r6 == .joined)
        let r7 = queue.take(upTo: 10)
        #expect(r7 == [3, 4])
        let r8 = queue.roundFinished()
        #expect(!r8, "nothing waits: the drain ends")
        let r9 = queue.enqueue(5)
        #expect(r9 == .startDrain, "the next job starts a new one")
    }

    @Test func aClosedQueueRefusesJobsAndKeepsThoseQueued() {
        var queue = GroupCommitQueue<Int>()
        _ = queue.enqueue(1)
        queue.close()
        let r10 = queue.enqueue(2)
        #expect(r10 == .closed)
        let r11 = queue.take(upTo: 10)
        #expect(r11 == [1])
    }
}
