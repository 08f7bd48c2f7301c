import EventStore
import Testing

@testable import PostgresEventStore

/// A batch of appends decided in memory, each seeing the ones before it.
@Suite struct AppendBatchPlanTests {
    static func event(_ id: String) -> NewEvent { NewEvent(eventId: id, type: "Happened", data: Array(#"{"n":1}"#.utf8)) }

    @Test func appendsInOneBatchSeeEachOther() throws {
        var plan = AppendBatchPlan(head: 10, commands: [:], events: [:], versions: ["A": 2])
        let first = try plan.decide(AppendRequest(streamId: "A", expected: .exact(2), events: [Self.event("e1")]), recordedAt: 7)
        #expect(first == AppendResult(streamId: "A", version: 3, position: 11))
        #expect(throws: EventStoreError.wrongExpectedVersion(streamId: "A", expected: .exact(2), actual: 3)) {
            try plan.decide(AppendRequest(streamId: "A", expected: .exact(2), events: [Self.event("e2")]), recordedAt: 7)
        }
        let other = try plan.decide(AppendRequest(streamId: "B", expected: .noStream, events: [Self.event("e3"), Self.event("e4")]), recordedAt: 7)
        #expect(other == AppendResult(streamId: "B", version: 2, position: 13))
        #expect(plan.newEvents.map(\.position) == [11, 12, 13], "a refused append takes no position")
        #expect(plan.head == 13)
    }

    @Test func aCommandIdOrEventIdSeenEarlierInTheBatchIsADuplicate() throws {
        var plan = AppendBatchPlan(head: 0, commands: [:], events: [:], versions: [:])
        let request = AppendRequest(streamId: "A", expected: .any, events: [Self.event("e1")], commandId: "c1", commandDigest: "d")
        let first = try plan.decide(request, recordedAt: 1)
        let again = try plan.decide(request, recordedAt: 1)
        #expect(again.duplicate && again.position == first.position)
        #expect(throws: EventStoreError.commandIdReused(commandId: "c1", streamId: "A")) {
            var reused = request
            reused.commandDigest = "other"
            reused.events = [Self.event("e9")]
            _ = try plan.decide(reused, recordedAt: 1)
        }
        let retried = try plan.decide(AppendRequest(streamId: "A", expected: .any, events: [Self.event("e1")]), recordedAt: 1)
        #expect(retried.duplicate, "the same event id again is a retry")
        #expect(plan.newEvents.count == 1)
        #expect(plan.newCommands.map(\.commandId) == ["c1"])
    }

    @Test func whatTheDatabaseHeldDecidesToo() throws {
        let stored = RecordedEvent(
            eventId: "old", streamId: "A", type: "Happened", schemaVersion: 1, streamVersion: 1, position: 4, recordedAt: 1,
            correlationId: nil, causationId: nil, data: Array(#"{"n":1}"#.utf8))
        var plan = AppendBatchPlan(
            head: 5, commands: ["c0": AppendResult(streamId: "A", version: 1, position: 4, commandDigest: "")], events: ["old": stored],
            versions: ["A": 1])
        #expect(try plan.decide(AppendRequest(streamId: "A", expected: .any, events: [Self.event("x")], commandId: "c0"), recordedAt: 1).duplicate)
        #expect(try plan.decide(AppendRequest(streamId: "A", expected: .any, events: [Self.event("old")]), recordedAt: 1).position == 4)
        #expect(throws: EventStoreError.self) {
            try plan.decide(AppendRequest(streamId: "B", expected: .any, events: [Self.event("old")]), recordedAt: 1)
        }
        #expect(plan.newEvents.isEmpty)
    }
}

/// What a store remembers of streams' versions, and when it must forget.
@Suite struct KnownStreamsTests {
    @Test func aPlanComesFromMemoryOnlyWhenEveryStreamIsKnownAtTheHead() throws {
        var known = KnownStreams()
        #expect(known.plan(for: ["A"]) == nil, "nothing known yet")
        known.learned(at: 0, [("A", 2), ("B", 0)], head: 5)
        let plan = try #require(known.plan(for: ["A", "B"]))
        #expect(plan.head == 5 && plan.version(of: "A") == 2 && plan.version(of: "B") == 0)
        #expect(known.plan(for: ["A", "C"]) == nil, "C was never seen")
    }

    @Test func learningAtAnotherHeadDropsWhatWasKnownBefore() {
        var known = KnownStreams()
        known.learned(at: 0, [("A", 2)], head: 5)
        known.learned(at: 5, [("B", 1)], head: 6)
        #expect(known.plan(for: ["A", "B"])?.head == 6, "learned at the head it knew: both stand")
        known.learned(at: 9, [("C", 1)], head: 10)
        #expect(known.plan(for: ["A"]) == nil, "the head moved elsewhere from 6 to 9: A may have changed")
        #expect(known.plan(for: ["C"])?.head == 10)
        known.forget()
        #expect(known.plan(for: ["C"]) == nil)
    }

    @Test func aHeadAnotherReplicaMovedKeepsTheVersionsAndPlansFromThere() {
        var known = KnownStreams()
        known.moved(to: 3)
        #expect(known.plan(for: []) == nil, "nothing known: nothing to move")
        known.learned(at: 0, [("A", 2)], head: 5)
        known.moved(to: 9)
        let plan = known.plan(for: ["A"])
        #expect(plan?.head == 9 && plan?.version(of: "A") == 2)
        known.learned(at: 9, [("B", 1)], head: 10)
        #expect(known.plan(for: ["A", "B"])?.head == 10, "written at the head it was told: both stand")
    }

    @Test func pastItsCapacityItStartsAgain() {
        var known = KnownStreams(capacity: 3)
        known.learned(at: 0, [("A", 1), ("B", 1)], head: 2)
        known.learned(at: 2, [("C", 1), ("D", 1)], head: 4)
        #expect(known.count == 2 && known.plan(for: ["C", "D"]) != nil && known.plan(for: ["A"]) == nil)
    }
}
