import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

/// `CheckpointStore`: named positions.
@Suite struct CheckpointStoreConformanceTests {
    @Test(arguments: StoreKind.allCases) func aCheckpointKeepsItsLatestPositionPerName(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        #expect(try await store.checkpoint("relay") == nil)
        try await store.saveCheckpoint("relay", position: 7)
        try await store.saveCheckpoint("relay", position: 9)
        #expect(try await store.checkpoint("relay") == 9)
        try await store.saveCheckpoint("other", position: 2)
        #expect(try await store.checkpoint("other") == 2)
        #expect(try await store.checkpoint("relay") == 9, "names are independent")
    }
}
