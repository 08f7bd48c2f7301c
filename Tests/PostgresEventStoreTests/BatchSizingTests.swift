import Testing

@testable import PostgresEventStore

/// How many queued appends the writer takes (see `BatchSizing`): all, up to the limit, except
/// after a wait longer than its shortest recent transaction, long alone, when half.
@Suite struct BatchSizingTests {
    /// A writer alone long enough to split, whose last transactions took `durations`.
    static func alone(_ durations: Duration...) -> BatchSizing {
        var sizing = BatchSizing(maxBatch: 512)
        let warmUp = Array(repeating: durations[0], count: BatchSizing.aloneBeforeSplitting)
        for (index, duration) in (warmUp + durations).enumerated() {
            sizing.committed(in: duration, from: Int64(index * 10), to: Int64(index * 10 + 10))
        }
        return sizing
    }

    @Test func takesEveryQueuedJobUpToTheLimitWhenItDidNotWait() {
        var sizing = BatchSizing(maxBatch: 512)
        #expect(sizing.take(queued: 60, waited: nil) == 60, "no transaction yet")
        sizing = Self.alone(.milliseconds(2), .milliseconds(2))
        #expect(sizing.take(queued: 60, waited: nil) == 60, "queued when it looked: the callers are not in a convoy")
        #expect(sizing.take(queued: 900, waited: nil) == 512)
        #expect(sizing.take(queued: 0, waited: nil) == 0)
    }

    @Test func splitsTheConvoyAfterAWaitLongerThanItsShortestTransaction() {
        var sizing = BatchSizing(maxBatch: 512)
        #expect(sizing.take(queued: 60, waited: .milliseconds(3)) == 60, "no transaction to compare the wait with")
        sizing = Self.alone(.milliseconds(2), .milliseconds(2))
        #expect(sizing.take(queued: 60, waited: .microseconds(2_100)) == 30)
        #expect(sizing.take(queued: 61, waited: .milliseconds(3)) == 31, "rounding up")
        #expect(sizing.take(queued: 900, waited: .milliseconds(5)) == 256, "half of what the limit allows")
        #expect(sizing.take(queued: 1, waited: .milliseconds(5)) == 1, "a lone caller's batch stays one")
        #expect(sizing.take(queued: 60, waited: .milliseconds(2)) == 60, "no longer than the transaction: whole")
    }

    @Test func keepsBatchesWholeUntilNoOtherReplicaAppendedForManyTransactions() {
        var sizing = BatchSizing(maxBatch: 512)
        sizing.committed(in: .milliseconds(2), from: 0, to: 60)
        #expect(sizing.aloneInARow == 0, "the first transaction: nothing to compare its head with")
        #expect(sizing.take(queued: 60, waited: .milliseconds(3)) == 60)
        var head: Int64 = 60
        for _ in 1..<BatchSizing.aloneBeforeSplitting {
            sizing.committed(in: .milliseconds(2), from: head, to: head + 60)
            head += 60
        }
        #expect(sizing.take(queued: 60, waited: .milliseconds(3)) == 60, "one transaction short of enough alone")
        sizing.committed(in: .milliseconds(2), from: head, to: head + 60)
        head += 60
        #expect(sizing.take(queued: 60, waited: .milliseconds(3)) == 30)
        // Another replica wrote 15 events between this writer's transactions.
        sizing.committed(in: .milliseconds(2), from: head + 15, to: head + 75)
        #expect(sizing.aloneInARow == 0)
        #expect(sizing.take(queued: 60, waited: .milliseconds(3)) == 60)
    }

    @Test func keepsBatchesWholeWhenTheWaitIsShorterThanAFlush() {
        // Four clients on a fast disk: a batch of one took 0.44 ms, mostly its flush; the
        // callers come back within a quarter of a millisecond, then wait 0.5 ms for batches of 4.
        let fast = Self.alone(.microseconds(440), .microseconds(500))
        #expect(fast.take(queued: 4, waited: .microseconds(250)) == 4)
        // A slow disk: a 6 ms flush, the callers back within 1 ms.
        let slow = Self.alone(.milliseconds(6), .milliseconds(6))
        #expect(slow.take(queued: 16, waited: .milliseconds(1)) == 16)
    }

    @Test func theShortestTransactionIsForgottenOverAFewDozenLongerOnes() {
        var sizing = Self.alone(.microseconds(400), .microseconds(2_000))
        #expect(sizing.shortestCommit == .microseconds(450), "a thirty-second of the way up")
        for _ in 0..<100 { sizing.committed(in: .microseconds(2_400), from: 0, to: 0) }
        let shortest = sizing.shortestCommit ?? .zero
        #expect(shortest > .microseconds(2_300) && shortest <= .microseconds(2_400))
        // A convoy: batches of 60 that take 2.4 ms, and a wait of 2.6 ms before each.
        #expect(sizing.take(queued: 60, waited: .microseconds(2_600)) == 30)
        sizing.committed(in: .microseconds(300), from: 0, to: 1)
        #expect(sizing.shortestCommit == .microseconds(300), "a shorter one counts at once")
    }
}
