import EventStore
import Foundation
import PostgresEventStore
import Testing

/// Snapshots and checkpoints queued among appends are written before the batch's appends, each
/// as a statement of its own, instead of in the appends' transaction: whatever the batches they
/// fall into, every one of them lands and every append keeps its rules.
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"))
struct PostgresMixedBatchTests {
    @Test func snapshotsAndCheckpointsQueuedAmongAppendsAllLand() async throws {
        let (store, _, _) = try await TestPostgres.freshStore()
        let streams = (0..<8).map { "Mixed-\($0)" }
        for stream in streams { _ = try await store.append(AppendRequest(streamId: stream, expected: .noStream, events: [event()])) }
        // Queued together while the writer is busy: some batches hold both kinds.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for round in 1...5 {
                for stream in streams {
                    group.addTask {
                        _ = try await store.append(AppendRequest(streamId: stream, expected: .any, events: [event()]))
                    }
                    group.addTask {
                        try await store.saveSnapshot(
                            Snapshot(streamId: stream, version: Int64(round), type: "MixedState", data: Array("{\"round\":\(round)}".utf8)))
                    }
                }
                group.addTask { try await store.saveCheckpoint("relay-\(round)", position: Int64(round)) }
            }
            try await group.waitForAll()
        }
        for stream in streams {
            let events = try await store.readStream(stream, fromVersion: 1, maxCount: 100)
            #expect(events.map(\.streamVersion) == Array(1...6))
            let snapshot = try #require(try await store.loadSnapshot(stream))
            #expect(snapshot.version == 5 && snapshot.data == Array("{\"round\":5}".utf8), "the latest version kept, whatever the order")
        }
        for round in 1...5 { #expect(try await store.checkpoint("relay-\(round)") == Int64(round)) }
        let all = try await store.readAll(fromPosition: 1, maxCount: 100)
        #expect(all.map(\.position) == Array(1...48), "no gap and no position twice")
        #expect(try await store.verify(pageSize: 16).problemCount == 0)
        // A batch of writes alone moves nothing.
        try await store.saveCheckpoint("relay-1", position: 48)
        #expect(try await store.checkpoint("relay-1") == 48)
        #expect(try await store.append(AppendRequest(streamId: "Mixed-0", expected: .exact(6), events: [event()])).position == 49)
    }
}
