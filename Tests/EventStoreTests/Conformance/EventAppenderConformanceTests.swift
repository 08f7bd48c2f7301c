import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

/// `EventAppender`: atomic appends, expected versions, idempotent event ids, the write gate.
@Suite struct EventAppenderConformanceTests {
    @Test(arguments: StoreKind.allCases) func appendsGetStreamVersionsAndGlobalPositions(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        let first = try await store.append(AppendRequest(streamId: "A-1", expected: .noStream, events: [event(), event()]))
        let second = try await store.append(AppendRequest(streamId: "B-1", expected: .noStream, events: [event()]))
        let third = try await store.append(AppendRequest(streamId: "A-1", expected: .exact(2), events: [event()]))
        #expect(first == AppendResult(streamId: "A-1", version: 2, position: 2))
        #expect(second == AppendResult(streamId: "B-1", version: 1, position: 3))
        #expect(third == AppendResult(streamId: "A-1", version: 3, position: 4))
        #expect(try await store.headPosition() == 4)
        #expect(try await store.streamVersion("A-1") == 3)
        #expect(try await store.streamVersion("C-1") == 0)

        let stream = try await store.readStream("A-1", fromVersion: 2, maxCount: 10)
        #expect(stream.map(\.streamVersion) == [2, 3])
        #expect(stream.map(\.position) == [2, 4])
        #expect(stream.allSatisfy { $0.correlationId == "corr" && $0.causationId == "cause" && $0.recordedAt == 1_763_899_200_000 })
        let all = try await store.readAll(fromPosition: 2, maxCount: 2)
        #expect(all.map(\.position) == [2, 3])
        #expect(all.map(\.streamId) == ["A-1", "B-1"])
        #expect(try await store.readAll(fromPosition: 5, maxCount: 10).isEmpty)
    }

    @Test(arguments: StoreKind.allCases) func everyExpectedVersionIsEnforced(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        #expect(
            await storeError { _ = try await store.append(AppendRequest(streamId: "S-1", expected: .streamExists, events: [event()])) }
                == .wrongExpectedVersion(streamId: "S-1", expected: .streamExists, actual: 0))
        #expect(
            await storeError { _ = try await store.append(AppendRequest(streamId: "S-1", expected: .exact(3), events: [event()])) }
                == .wrongExpectedVersion(streamId: "S-1", expected: .exact(3), actual: 0))
        _ = try await store.append(AppendRequest(streamId: "S-1", expected: .noStream, events: [event()]))
        #expect(
            await storeError { _ = try await store.append(AppendRequest(streamId: "S-1", expected: .noStream, events: [event()])) }
                == .wrongExpectedVersion(streamId: "S-1", expected: .noStream, actual: 1))
        _ = try await store.append(AppendRequest(streamId: "S-1", expected: .streamExists, events: [event()]))
        _ = try await store.append(AppendRequest(streamId: "S-1", expected: .any, events: [event()]))
        _ = try await store.append(AppendRequest(streamId: "S-2", expected: .any, events: [event()]))
        let error = await storeError { _ = try await store.append(AppendRequest(streamId: "S-1", expected: .exact(2), events: [event()])) }
        #expect(error == .wrongExpectedVersion(streamId: "S-1", expected: .exact(2), actual: 3))
        #expect(error?.description == "stream S-1 is at version 3, expected version 2")
        #expect(try await store.headPosition() == 4, "refused appends store nothing")
    }

    @Test(arguments: StoreKind.allCases) func writersRacingOnOneVersionEndWithExactlyOneWinner(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        _ = try await store.append(AppendRequest(streamId: "R-1", expected: .noStream, events: [event()]))
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 {
                group.addTask { (try? await store.append(AppendRequest(streamId: "R-1", expected: .exact(1), events: [event()]))) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        #expect(try await store.streamVersion("R-1") == 2)
    }

    @Test(arguments: StoreKind.allCases) func theTraceContextIsStoredButIsNotTheEventsContent(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        var traced = event("t1")
        traced.traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let first = try await store.append(AppendRequest(streamId: "T-1", expected: .noStream, events: [traced, event("t2")]))
        let stored = try await store.readStream("T-1", fromVersion: 1, maxCount: 10)
        #expect(stored.map(\.traceParent) == [traced.traceParent, nil])
        #expect(try await store.readAll(fromPosition: 1, maxCount: 10).map(\.traceParent) == [traced.traceParent, nil])
        // A retry from another trace (a client's second attempt) is the same append.
        traced.traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        let retry = try await store.append(AppendRequest(streamId: "T-1", expected: .noStream, events: [traced, event("t2")]))
        #expect(retry == AppendResult(streamId: "T-1", version: first.version, position: first.position, duplicate: true))
    }

    @Test(arguments: StoreKind.allCases) func theSameEventIdsAgainAppendNothing(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        let events = [event("e1"), event("e2")]
        let first = try await store.append(AppendRequest(streamId: "I-1", expected: .noStream, events: events))
        let retry = try await store.append(AppendRequest(streamId: "I-1", expected: .noStream, events: events))
        #expect(retry == AppendResult(streamId: "I-1", version: first.version, position: first.position, duplicate: true))
        #expect(try await store.headPosition() == 2)

        let changed = await storeError {
            _ = try await store.append(AppendRequest(streamId: "I-1", expected: .any, events: [event("e1", data: #"{"n":2}"#), event("e2")]))
        }
        guard case .eventIdConflict(let id, _)? = changed else {
            Issue.record("expected an event id conflict, got \(String(describing: changed))")
            return
        }
        #expect(id == "e1")
        let partial = await storeError {
            _ = try await store.append(AppendRequest(streamId: "I-1", expected: .any, events: [event("e2"), event("e3")]))
        }
        guard case .eventIdConflict? = partial else {
            Issue.record("expected an event id conflict, got \(String(describing: partial))")
            return
        }
        #expect(try await store.headPosition() == 2)
    }

    /// A stored id found after the append's new events were written (the SQLite store finds it by
    /// its unique index, not by a lookup first): the new events are undone, a retry answers with
    /// its first result, and the next append takes the next position.
    @Test(arguments: StoreKind.allCases) func aStoredIdAfterNewOnesStoresNoneOfThem(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        let first = try await store.append(AppendRequest(streamId: "U-1", expected: .noStream, events: [event("u1")]))
        let mixed = await storeError {
            _ = try await store.append(AppendRequest(streamId: "U-1", expected: .any, events: [event("u2"), event("u3"), event("u1")]))
        }
        guard case .eventIdConflict(let id, _)? = mixed else {
            Issue.record("expected an event id conflict, got \(String(describing: mixed))")
            return
        }
        #expect(id == "u2")
        #expect(try await store.headPosition() == 1)
        #expect(try await store.readStream("U-1", fromVersion: 1, maxCount: 10).map(\.eventId) == ["u1"])
        let retry = try await store.append(AppendRequest(streamId: "U-1", expected: .any, events: [event("u1")]))
        #expect(retry == AppendResult(streamId: "U-1", version: 1, position: first.position, duplicate: true))
        let next = try await store.append(AppendRequest(streamId: "U-1", expected: .exact(1), events: [event("u2")]))
        #expect(next == AppendResult(streamId: "U-1", version: 2, position: 2))
    }

    @Test(arguments: StoreKind.allCases) func badRequestsAreRefusedAndStoreNothing(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        for request in [
            AppendRequest(streamId: "", expected: .any, events: [event()]),
            AppendRequest(streamId: "X-1", expected: .any, events: []),
            AppendRequest(streamId: "X-1", expected: .any, events: [event("same"), event("same")]),
            AppendRequest(streamId: "X-1", expected: .any, events: [event("", type: "T")]),
        ] {
            guard case .invalid? = await storeError({ _ = try await store.append(request) }) else {
                Issue.record("expected invalid for \(request)")
                continue
            }
        }
        #expect(try await store.headPosition() == 0)
    }

    @Test(arguments: StoreKind.allCases) func refusedWritesFailAsDataLossWhileReadsGoOn(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        _ = try await store.append(AppendRequest(streamId: "G-1", expected: .noStream, events: [event()]))
        #expect(store.writeRefusal == nil)
        store.refuseWrites(because: "the broker holds event x at position 9")
        store.refuseWrites(because: "a second reason")
        #expect(store.writeRefusal == "the broker holds event x at position 9", "the first reason stays")
        let refused = await storeError { _ = try await store.append(AppendRequest(streamId: "G-1", expected: .any, events: [event()])) }
        guard case .dataLoss(let reason)? = refused else {
            Issue.record("expected dataLoss, got \(String(describing: refused))")
            return
        }
        #expect(reason.contains("position 9"))
        #expect(try await store.readStream("G-1", fromVersion: 1, maxCount: 10).count == 1, "reads go on, for recovery")
        #expect(try await store.headPosition() == 1)
    }
}
