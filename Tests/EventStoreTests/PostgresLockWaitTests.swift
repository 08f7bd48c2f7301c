import EventStore
import Foundation
import PostgresEventStore
import PostgresNIO
import Testing

/// A transaction locks the head and reads what its appends touch in one statement, whose
/// snapshot is older than the lock when it had to wait: what another replica committed in
/// between must still be seen (the reads are made again), or two appends would both take one
/// stream version.
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"))
struct PostgresLockWaitTests {
    @Test func anAppendThatWaitedForTheHeadLockSeesWhatWasCommittedMeanwhile() async throws {
        let (first, client, schema) = try await TestPostgres.freshStore()
        var options = PostgresEventStore.Options()
        options.schema = schema
        let second = try await PostgresEventStore.open(client: client, options: options)
        _ = try await first.append(AppendRequest(streamId: "Other-1", expected: .noStream, events: [event()]))
        let logger = Logger(label: "test")

        let outcomes = try await client.withConnection { holder in
            try await holder.query("BEGIN", logger: logger)
            try await holder.query(PostgresQuery(unsafeSQL: "SELECT position FROM \(schema).head FOR UPDATE"), logger: logger)
            // Both replicas' transactions start (their snapshots taken) and queue behind the holder.
            let racers = [first, second].map { store in
                Task { () -> Result<AppendResult, EventStoreError> in
                    do {
                        return .success(try await store.append(AppendRequest(streamId: "Race-1", expected: .noStream, events: [event()])))
                    } catch let error as EventStoreError {
                        return .failure(error)
                    }
                }
            }
            try await waitForLockWaiters(2, in: schema, on: holder, logger: logger)
            try await holder.query("ROLLBACK", logger: logger)
            var outcomes: [Result<AppendResult, EventStoreError>] = []
            for racer in racers { outcomes.append(try await racer.value) }
            return outcomes
        }
        let won = outcomes.compactMap { try? $0.get() }
        #expect(won.count == 1 && won.first?.version == 1 && won.first?.position == 2)
        let refused = outcomes.compactMap { outcome -> EventStoreError? in
            if case .failure(let error) = outcome { return error }
            return nil
        }
        guard refused.count == 1, case .wrongExpectedVersion(_, _, let actual) = refused[0] else {
            Issue.record("the later racer must be refused for its version, not fail: \(refused)")
            return
        }
        #expect(actual == 1)
        #expect(try await first.readStream("Race-1", fromVersion: 1, maxCount: 10).map(\.position) == [2])
    }

    private func waitForLockWaiters(_ count: Int, in schema: String, on connection: PostgresConnection, logger: Logger) async throws {
        for _ in 0..<500 {
            // Inside a transaction the statistics are a snapshot taken at their first read.
            try await connection.query("SELECT pg_stat_clear_snapshot()", logger: logger)
            let rows = try await connection.query(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position(\(schema) IN query) > 0", logger: logger)
            if try await rows.collect().first?.decode(Int64.self) ?? 0 >= count { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("the appends never waited for the head lock")
    }
}
