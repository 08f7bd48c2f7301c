import EventStore
import Foundation
import PostgresEventStore
import PostgresNIO
import Testing
import WallTime

/// `cqrs verify` on the PostgreSQL store: clean when sound, and a row changed behind the store's
/// back is named, never served.
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"))
struct PostgresVerificationTests {
    @Test func aSoundStoreVerifiesCleanAndADamagedRowIsNamed() async throws {
        let (store, client, schema) = try await TestPostgres.freshStore()
        for stream in ["A-1", "B-1", "A-2"] {
            _ = try await store.append(
                AppendRequest(streamId: stream, expected: .noStream, events: [event(), event()], commandId: UUID().uuidString))
        }
        let sound = try await store.verify(pageSize: 2)
        #expect(sound.problemCount == 0, "\(sound.problems)")
        #expect(sound.eventsChecked == 6 && sound.headPosition == 6 && sound.streams == 3)

        try await client.query(PostgresQuery(unsafeSQL: "UPDATE \(schema).events SET data = '\\x7b7d'::bytea WHERE position = 4"))
        let damaged = try await store.verify(pageSize: 2)
        #expect(damaged.problemCount == 1)
        #expect(damaged.problems.first?.contains("position 4") == true, "\(damaged.problems)")
        let read = await storeError { _ = try await store.readAll(fromPosition: 1, maxCount: 10) }
        guard case .dataLoss = read else {
            Issue.record("a damaged row must not be served: \(String(describing: read))")
            return
        }
    }
}
