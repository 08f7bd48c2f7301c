import EventStore
import Foundation
import PostgresEventStore
import PostgresNIO
import Testing
import WallTime

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

}
