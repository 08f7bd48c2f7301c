import EventStore
import Foundation
import PostgresEventStore
import PostgresNIO
import Testing

/// Two stores on one schema, as two replicas: what one decides from its own knowledge (a
/// snapshot older than the lock it waited for, stream versions it remembers) must never miss what
/// the other committed, or two appends would both take one stream version.
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"))
struct PostgresReplicaTests {
    @Test func anAppendThatWaitedForTheHeadLockSeesWhatWasCommittedMeanwhile() async throws {
        let (first, second, client, schema) = try await Self.twoReplicas()
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

    /// A store remembers the versions of the streams it wrote and decides the next append to
    /// them without reading; another replica's append in between must be seen all the same.
    @Test func aRememberedStreamVersionGivesWayToAnotherReplicasAppend() async throws {
        let (first, second, _, _) = try await Self.twoReplicas()
        let opened = try await first.append(AppendRequest(streamId: "S-1", expected: .noStream, events: [event()], commandId: "c1"))
        #expect(try await first.append(AppendRequest(streamId: "S-1", expected: .exact(1), events: [event()])).version == 2)
        // The first now knows S-1 at version 2; the second appends behind its back.
        #expect(try await second.append(AppendRequest(streamId: "S-1", expected: .exact(2), events: [event()])).position == 3)
        let stale = await storeError {
            _ = try await first.append(AppendRequest(streamId: "S-1", expected: .exact(2), events: [event()]))
        }
        guard case .wrongExpectedVersion(_, _, let actual)? = stale else {
            Issue.record("expected a refusal for the version, got \(String(describing: stale))")
            return
        }
        #expect(actual == 3)
        let next = try await first.append(AppendRequest(streamId: "S-1", expected: .exact(3), events: [event()]))
        #expect(next.version == 4 && next.position == 4)
        // A command repeated to a store that remembers its stream is answered with the first result.
        let repeated = try await first.append(AppendRequest(streamId: "S-1", expected: .noStream, events: [event()], commandId: "c1"))
        #expect(repeated.duplicate && repeated.position == opened.position && repeated.version == opened.version)
        // So is an event id already stored, sent again under a new command.
        let stored = try #require(try await first.readStream("S-1", fromVersion: 4, maxCount: 1).first)
        let again = try await first.append(
            AppendRequest(streamId: "S-1", expected: .exact(3), events: [NewEvent(eventId: stored.eventId, type: stored.type, data: stored.data)]))
        #expect(again.duplicate && again.position == 4)
        #expect(try await second.readStream("S-1", fromVersion: 1, maxCount: 10).map(\.position) == [1, 2, 3, 4])
    }

    /// Two replicas taking turns on the head, each on streams of its own: a store whose head
    /// another replica moved plans its batch again at the head it is told, keeping the versions
    /// it knows; where one of them is stale (the other replica appended to that stream too) the
    /// write collides on the stream's version and the reads decide.
    @Test func appendsFromMemoryFollowTheHeadAnotherReplicaMoved() async throws {
        let (first, second, _, _) = try await Self.twoReplicas()
        _ = try await first.append(AppendRequest(streamId: "A-1", expected: .noStream, events: [event()]))
        _ = try await second.append(AppendRequest(streamId: "B-1", expected: .noStream, events: [event()]))
        var positions: [Int64] = []
        for round in 0..<5 {
            let mine = try await first.append(AppendRequest(streamId: "A-1", expected: .exact(Int64(1 + 2 * round)), events: [event(), event()]))
            let theirs = try await second.append(AppendRequest(streamId: "B-1", expected: .exact(Int64(round + 1)), events: [event()]))
            #expect(mine.version == Int64(3 + 2 * round) && theirs.version == Int64(round + 2))
            positions += [mine.position, theirs.position]
        }
        #expect(positions == [4, 5, 7, 8, 10, 11, 13, 14, 16, 17], "each the head the other left, plus its own events")
        // The second appends to A-1 behind the first's back; the first, any version, goes after it.
        _ = try await second.append(AppendRequest(streamId: "A-1", expected: .any, events: [event()]))
        let after = try await first.append(AppendRequest(streamId: "A-1", expected: .any, events: [event()]))
        #expect(after.version == 13 && after.position == 19)
        let all = try await first.readAll(fromPosition: 1, maxCount: 100)
        #expect(all.map(\.position) == Array(1...19), "no gap and no position twice")
        #expect(try await first.readStream("A-1", fromVersion: 1, maxCount: 100).map(\.streamVersion) == Array(1...13))
        #expect(try await first.verify(pageSize: 10).problemCount == 0)
    }

    /// Two stores on one fresh schema.
    private static func twoReplicas() async throws -> (PostgresEventStore, PostgresEventStore, PostgresClient, String) {
        let (first, client, schema) = try await TestPostgres.freshStore()
        var options = PostgresEventStore.Options()
        options.schema = schema
        return (first, try await PostgresEventStore.open(client: client, options: options), client, schema)
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
