import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

/// `SnapshotStore`: the latest snapshot per stream.
@Suite struct SnapshotStoreConformanceTests {
    @Test(arguments: StoreKind.allCases) func aSnapshotIsKeptPerStreamAndNeverReplacedByAnOlderOne(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        #expect(try await store.loadSnapshot("A-1") == nil)
        try await store.saveSnapshot(Snapshot(streamId: "A-1", version: 10, type: "S", data: Array("{}".utf8)))
        try await store.saveSnapshot(Snapshot(streamId: "A-1", version: 5, type: "S", data: Array("[]".utf8)))
        #expect(try await store.loadSnapshot("A-1")?.version == 10, "an older snapshot never replaces a newer one")
        try await store.saveSnapshot(Snapshot(streamId: "A-1", version: 12, type: "S2", data: Array(#"{"n":12}"#.utf8)))
        #expect(try await store.loadSnapshot("A-1") == Snapshot(streamId: "A-1", version: 12, type: "S2", data: Array(#"{"n":12}"#.utf8)))
        #expect(try await store.loadSnapshot("B-1") == nil, "snapshots are per stream")
    }
}
