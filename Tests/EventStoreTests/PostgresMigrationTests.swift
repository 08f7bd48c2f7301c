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
        try await client.query(PostgresQuery(unsafeSQL: "DELETE FROM \(schema).schema_migrations WHERE version > 1"))

        var options = PostgresEventStore.Options()
        options.schema = schema
        let reopened = try await PostgresEventStore.open(client: client, options: options)
        let versions = try await client.query(PostgresQuery(unsafeSQL: "SELECT max(version) FROM \(schema).schema_migrations")).collect()
        #expect(try versions.first?.decode(Int64.self) == 4)
        #expect(try await reopened.readAll(fromPosition: 1, maxCount: 10).count == 2, "the old rows' checksums still verify")
        var traced = event()
        traced.traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        _ = try await reopened.append(AppendRequest(streamId: "M-1", expected: .exact(2), events: [traced]))
        #expect(try await reopened.readStream("M-1", fromVersion: 3, maxCount: 1).first?.traceParent == traced.traceParent)
        #expect(try await reopened.verify(pageSize: 2).problemCount == 0)
    }
}
