import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

/// `StreamReader`: one stream's events from a version, in order, exactly as appended.
@Suite struct StreamReaderConformanceTests {
    @Test(arguments: StoreKind.allCases) func aStreamReadsFromAVersionInPagesWithNothingOfOtherStreams(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        for index in 1...5 {
            _ = try await store.append(AppendRequest(streamId: "A-1", expected: .any, events: [event("a\(index)")]))
            _ = try await store.append(AppendRequest(streamId: "A-10", expected: .any, events: [event("b\(index)")]))
        }
        #expect(try await store.readStream("A-1", fromVersion: 1, maxCount: 100).map(\.eventId) == ["a1", "a2", "a3", "a4", "a5"])
        #expect(try await store.readStream("A-1", fromVersion: 2, maxCount: 2).map(\.streamVersion) == [2, 3])
        #expect(try await store.readStream("A-1", fromVersion: 6, maxCount: 2).isEmpty)
        #expect(try await store.readStream("missing", fromVersion: 1, maxCount: 2).isEmpty)
        #expect(try await store.streamVersion("A-1") == 5)
        #expect(try await store.streamVersion("A-10") == 5)
        #expect(try await store.streamVersion("A-") == 0)
    }

    @Test(arguments: StoreKind.allCases) func anEventReadsBackExactlyAsAppended(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        let data = #"{"text":"caf\u00e9 \"quoted\"","n":-1.5e3,"deep":[{"a":null}]}"#
        let appended = NewEvent(eventId: "e1", type: "Typed", schemaVersion: 3, data: Array(data.utf8), correlationId: "c", causationId: nil)
        _ = try await store.append(AppendRequest(streamId: "E-1", expected: .noStream, events: [appended]))
        let read = try #require(try await store.readStream("E-1", fromVersion: 1, maxCount: 1).first)
        #expect(
            read
                == RecordedEvent(
                    eventId: "e1", streamId: "E-1", type: "Typed", schemaVersion: 3, streamVersion: 1, position: 1, recordedAt: 1_763_899_200_000,
                    correlationId: "c", causationId: nil, data: Array(data.utf8)))
    }
}
