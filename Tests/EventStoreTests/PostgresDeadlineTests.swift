import EventStore
import Foundation
import NIOCore
import NIOPosix
import PostgresNIO
import Testing
import WallTime

@testable import PostgresEventStore

/// A transaction of the PostgreSQL store gives up when no caller waits any more: its statements,
/// the wait for the head lock included, are bounded by the latest deadline of its appends.
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"))
struct PostgresDeadlineTests {
    @Test func anAppendBehindAStuckLockHolderFailsByItsDeadlineAndStoresNothing() async throws {
        let (store, client, schema) = try await TestPostgres.freshStore()
        _ = try await store.append(AppendRequest(streamId: "A-1", expected: .noStream, events: [event()], commandId: "c1"))

        try await client.withConnection { holder in
            // Another session holds the head lock, as a replica stopped mid-transaction would.
            try await holder.query("BEGIN", logger: Logger(label: "test"))
            try await holder.query(PostgresQuery(unsafeSQL: "SELECT position FROM \(schema).head FOR UPDATE"), logger: Logger(label: "test"))
            let started = ContinuousClock.now
            let failure = await storeError {
                try await CallDeadline.$current.withValue(.now + .milliseconds(300)) {
                    _ = try await store.append(AppendRequest(streamId: "A-1", expected: .exact(1), events: [event()], commandId: "c2"))
                }
            }
            let waited = ContinuousClock.now - started
            #expect(waited < .seconds(5), "bounded by the 300 ms deadline, not the 30 s statement_timeout: \(waited)")
            guard case .unavailable? = failure else {
                Issue.record("expected unavailable, got \(String(describing: failure))")
                return
            }
            try await holder.query("ROLLBACK", logger: Logger(label: "test"))
        }
        #expect(try await store.headPosition() == 1, "the timed-out append stored nothing")
        let later = try await store.append(AppendRequest(streamId: "A-1", expected: .exact(1), events: [event()], commandId: "c3"))
        #expect(later.version == 2, "the next batch, with no deadline, is not held to the last one's budget")
    }

    /// The wait for a pooled connection is bounded on an event loop too, where the servers run
    /// their calls: there its timer is the loop's own, and it must still fire.
    @Test func aLeaseWaitedForOnAnEventLoopGivesUpAfterTheConnectionWait() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["JFRAME_TEST_POSTGRES_URL"])
        var options = PostgresEventStore.Options()
        options.connectionWait = .milliseconds(300)
        let store = try await PostgresEventStore.connect(
            url: url + (url.contains("?") ? "&" : "?") + "pool=1&schema=\(TestPostgres.freshSchema())", options: options)
        defer { store.close() }
        // The pool's one connection, held for longer than the wait.
        let holder = Task { try await store.withConnection { _ in try await Task.sleep(for: .seconds(3)) } }
        try await Task.sleep(for: .milliseconds(200))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let started = ContinuousClock.now
        let failure: EventStoreError? = await withCheckedContinuation { done in
            loop.execute {
                // Immediate: the lease and its timer are set up on the loop's thread.
                Task.immediate {
                    #expect(MultiThreadedEventLoopGroup.currentEventLoop === loop)
                    done.resume(returning: await storeError { _ = try await store.readStream("A-1", fromVersion: 1, maxCount: 10) })
                }
            }
        }
        let waited = ContinuousClock.now - started
        guard case .unavailable(let message)? = failure else {
            Issue.record("expected unavailable, got \(String(describing: failure))")
            return
        }
        #expect(message.contains("no connection to PostgreSQL within"), "\(message)")
        #expect(waited >= .milliseconds(250) && waited < .seconds(2), "bounded by the 300 ms wait: \(waited)")
        holder.cancel()
    }

}
