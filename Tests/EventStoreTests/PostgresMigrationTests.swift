import EventStore
import Foundation
import PostgresEventStore
import PostgresNIO
import Testing

/// A database an older build made migrates forward when a replica of this one opens it.
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"))
struct PostgresMigrationTests {
    @Test func aVersion1SchemaGainsTheTraceColumnAndTheWriteFunctionsAndKeepsItsEvents() async throws {
        let (store, client, schema) = try await TestPostgres.freshStore()
        _ = try await store.append(AppendRequest(streamId: "M-1", expected: .noStream, events: [event(), event()]))
        // Put the schema back the way version 1 left it.
        try await client.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(schema).events DROP COLUMN trace_parent"))
        try await client.query(PostgresQuery(unsafeSQL: "DROP FUNCTION \(schema).append_rows"))
        try await client.query(PostgresQuery(unsafeSQL: "DROP FUNCTION \(schema).append_rows_at"))
        try await Self.collateByDefault(schema, on: client)
        try await client.query(PostgresQuery(unsafeSQL: "DELETE FROM \(schema).schema_migrations WHERE version > 1"))

        var options = PostgresEventStore.Options()
        options.schema = schema
        let reopened = try await PostgresEventStore.open(client: client, options: options)
        let versions = try await client.query(PostgresQuery(unsafeSQL: "SELECT max(version) FROM \(schema).schema_migrations")).collect()
        #expect(try versions.first?.decode(Int64.self) == 4)
        #expect(try await Self.byteOrderedColumns(schema, on: client) == Self.keyColumns)
        #expect(try await reopened.readAll(fromPosition: 1, maxCount: 10).count == 2, "the old rows' checksums still verify")
        var traced = event()
        traced.traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        _ = try await reopened.append(AppendRequest(streamId: "M-1", expected: .exact(2), events: [traced]))
        #expect(try await reopened.readStream("M-1", fromVersion: 3, maxCount: 1).first?.traceParent == traced.traceParent)
        #expect(try await reopened.verify(pageSize: 2).problemCount == 0)
    }

    @Test func aStoreWhoseKeysHadTheDatabasesCollationComparesThemAsBytesAndAnswersAsBefore() async throws {
        let (store, client, schema) = try await TestPostgres.freshStore()
        #expect(try await Self.byteOrderedColumns(schema, on: client) == Self.keyColumns, "a new store is made so")
        // Stream ids that sort differently as bytes and under a language's rules.
        let streams = ["Account-b", "account-a", "Account-\u{e9}", "ACCOUNT-c"]
        for (index, stream) in streams.enumerated() {
            _ = try await store.append(
                AppendRequest(
                    streamId: stream, expected: .noStream, events: [event(), event()], commandId: "cmd-\(index)", commandDigest: "d\(index)"))
        }
        try await store.saveCheckpoint("relay", position: 4)
        // Put the keys back the way older builds made them: in the database's collation.
        try await Self.collateByDefault(schema, on: client)
        #expect(try await Self.byteOrderedColumns(schema, on: client).isEmpty)

        var options = PostgresEventStore.Options()
        options.schema = schema
        let reopened = try await PostgresEventStore.open(client: client, options: options)
        #expect(try await Self.byteOrderedColumns(schema, on: client) == Self.keyColumns)
        for (index, stream) in streams.enumerated() {
            let events = try await reopened.readStream(stream, fromVersion: 1, maxCount: 10)
            #expect(events.map(\.position) == [Int64(2 * index + 1), Int64(2 * index + 2)], "\(stream)")
            // The command's first result, found through the rebuilt primary key.
            let retry = try await reopened.append(
                AppendRequest(streamId: stream, expected: .exact(2), events: [event()], commandId: "cmd-\(index)", commandDigest: "d\(index)"))
            #expect(retry.duplicate && retry.position == Int64(2 * index + 2))
        }
        // The rebuilt unique indexes still refuse: an event id stored, a stream's version taken.
        let stored = try await reopened.readStream("account-a", fromVersion: 1, maxCount: 1)[0]
        let repeated = try await reopened.append(AppendRequest(streamId: "account-a", expected: .exact(2), events: [event(stored.eventId)]))
        #expect(repeated.duplicate && repeated.position == stored.position)
        #expect(try await reopened.checkpoint("relay") == 4)
        let next = try await reopened.append(AppendRequest(streamId: "account-a", expected: .exact(2), events: [event()]))
        #expect(next.version == 3 && next.position == 9)
        // A replica that was running before the migration goes on: its prepared write and the
        // function's plans are planned again over the rebuilt indexes.
        let beside = try await store.append(AppendRequest(streamId: "Account-b", expected: .exact(2), events: [event()]))
        #expect(beside.version == 3 && beside.position == 10)
        #expect(try await reopened.verify(pageSize: 3).problemCount == 0)
    }

    /// A replica that starts while another appends gives the keys byte order without failing an
    /// append: altering the tables in another order than the appends take them deadlocked.
    @Test func keysGetByteOrderWhileAnotherReplicaAppends() async throws {
        let (store, client, schema) = try await TestPostgres.freshStore()
        _ = try await store.append(AppendRequest(streamId: "W-0", expected: .noStream, events: [event()], commandId: UUID().uuidString))
        try await Self.collateByDefault(schema, on: client)
        let appending = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        for _ in 0..<40 {
                            _ = try await store.append(
                                AppendRequest(streamId: "W-\(writer)", expected: .any, events: [event()], commandId: UUID().uuidString))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await Task.sleep(for: .milliseconds(30))
        var options = PostgresEventStore.Options()
        options.schema = schema
        let reopened = try await PostgresEventStore.open(client: client, options: options)
        try await appending.value
        #expect(try await Self.byteOrderedColumns(schema, on: client) == Self.keyColumns)
        #expect(try await reopened.headPosition() == 1 + 16 * 40)
    }

    /// The columns the store gives the collation "C", as `table.column`.
    static let keyColumns = ["checkpoints.name", "commands.command_id", "events.event_id", "events.stream_id", "snapshots.stream_id"]

    static func byteOrderedColumns(_ schema: String, on client: PostgresClient) async throws -> [String] {
        let rows = try await client.query(
            """
            SELECT table_name || '.' || column_name FROM information_schema.columns
            WHERE table_schema = \(schema) AND collation_name = 'C' ORDER BY 1
            """
        ).collect()
        return try rows.map { try $0.decode(String.self) }
    }

    /// Gives the key columns the database's default collation back, as older builds made them.
    static func collateByDefault(_ schema: String, on client: PostgresClient) async throws {
        for column in keyColumns {
            let parts = column.split(separator: ".")
            try await client.query(
                PostgresQuery(unsafeSQL: "ALTER TABLE \(schema).\(parts[0]) ALTER COLUMN \(parts[1]) TYPE TEXT COLLATE \"default\""))
        }
    }
}
