import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

/// `AllStreamReader`: every stream in global order, pages, the head, and waiting for more.
@Suite struct AllStreamReaderConformanceTests {
    @Test(arguments: StoreKind.allCases) func waitersWakeWhenAnEventCommits(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        #expect(await store.waitForEvents(after: 0, timeout: .milliseconds(20)) == false)
        async let woke = store.waitForEvents(after: 0, timeout: .seconds(10))
        try await Task.sleep(for: .milliseconds(20))
        _ = try await store.append(AppendRequest(streamId: "W-1", expected: .any, events: [event()]))
        #expect(await woke)
    }

    @Test(arguments: StoreKind.allCases) func allStreamsReadInPositionOrderInPages(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        #expect(try await store.headPosition() == 0)
        #expect(try await store.readAll(fromPosition: 1, maxCount: 10).isEmpty)
        for index in 1...7 {
            _ = try await store.append(AppendRequest(streamId: "S-\(index % 3)", expected: .any, events: [event("e\(index)"), event("f\(index)")]))
        }
        #expect(try await store.headPosition() == 14)
        var seen: [RecordedEvent] = []
        var next: Int64 = 1
        while true {
            let page = try await store.readAll(fromPosition: next, maxCount: 4)
            guard let last = page.last else { break }
            #expect(page.count <= 4)
            seen += page
            next = last.position + 1
        }
        #expect(seen.map(\.position) == Array(1...14), "no gap, no repeat")
        #expect(seen.map(\.eventId) == (1...7).flatMap { ["e\($0)", "f\($0)"] }, "commit order")
        #expect(try await store.readAll(fromPosition: 15, maxCount: 10).isEmpty)
        guard case .invalid? = await storeError({ _ = try await store.readAll(fromPosition: 1, maxCount: 0) }) else {
            Issue.record("a zero page must be refused")
            return
        }
    }
}
