import Crypto
import EventBus
import EventStore
import Foundation
import TestSupport
import Testing

@testable import Outbox

/// The relay on the in-memory bus: publishing, outages, restarts, replays and the evidence
/// checks, in milliseconds and without a broker process.
@Suite struct OutboxRelayTests {
    func run(_ relay: OutboxRelay) -> Task<Void, any Error> { Task { try await relay.run() } }

    @Test func everyEventReachesItsTopicKeyedByAggregateWithItsAttributes() async throws {
        let history = History()
        let bus = InMemoryEventBus()
        try await history.append("BankAccount", "a", count: 2)
        try await history.append("Order", "o1")
        try await history.append("Ledger", "x")
        let relay = OutboxRelay(store: history.store, bus: bus, topics: testTopics)
        let running = run(relay)
        defer { running.cancel() }
        try await waitUntil { relay.status.publishedPosition == 4 }

        let accounts = try await bus.allRecords(of: "BankAccount")
        #expect(accounts.map(\.key) == ["a", "a"])
        #expect(accounts.map(\.headers["ce_streamversion"]) == ["1", "2"])
        #expect(try await bus.allRecords(of: "OnNewOrder").map(\.headers["ce_subject"]) == ["Order-o1"], "a category's topic")
        #expect(try await bus.allRecords(of: "Ledger").count == 1, "an unlisted category publishes to a topic of its name")
        let record = try #require(accounts.first)
        let stored = try #require(try await history.store.readAll(fromPosition: 1, maxCount: 1).first)
        #expect(record.value == stored.data)
        #expect(record.headers["ce_id"] == stored.eventId && record.headers["ce_position"] == "1" && record.headers["ce_type"] == "Happened")
        #expect(record.headers["ce_time"] == "2025-11-23T12:00:00.000Z" && record.headers["ce_correlationid"] == "corr")
        #expect(record.headers["cqrs_signature"] == nil, "unsigned without a key")
        #expect(try await bus.partitions(of: "BankAccount")?.count == 3, "topics are created with the relay's partition count")
        try await waitUntil { try await history.store.checkpoint("outbox-relay") == 4 }
    }

    @Test func nothingIsLostWhileTheBusIsAwayAndStatusSaysSo() async throws {
        let history = History()
        let bus = InMemoryEventBus()
        var options = OutboxRelay.Options()
        options.batchSize = 4
        options.maxBackoff = .milliseconds(20)
        let relay = OutboxRelay(store: history.store, bus: bus, topics: testTopics, options: options)
        let running = run(relay)
        defer { running.cancel() }
        try await history.append("BankAccount", "a")
        try await waitUntil { relay.status.publishedPosition == 1 && relay.status.brokerConnected }

        bus.setAvailable(false)
        for account in ["a", "b", "c"] { try await history.append("BankAccount", account, count: 5) }
        try await waitUntil { !relay.status.brokerConnected }
        #expect(relay.status.publishedPosition == 1)
        #expect(relay.status.lastError?.contains("unavailable") == true)

        bus.setAvailable(true)
        try await waitUntil { relay.status.publishedPosition == 16 && relay.status.brokerConnected }
        #expect(relay.status.lastError == nil)
        let records = try await bus.allRecords(of: "BankAccount")
        #expect(records.compactMap { $0.headers["ce_position"].flatMap(Int64.init) }.sorted() == Array(1...16), "each event once")
        for account in ["a", "b", "c"] {
            let versions = records.filter { $0.key == account }.compactMap { $0.headers["ce_streamversion"].flatMap(Int64.init) }
            #expect(versions == versions.sorted(), "per-key order for \(account)")
        }
    }

    @Test func aRelayRestartedAfterACrashBeforeItsCheckpointPublishesNothingTwice() async throws {
        let history = History()
        let bus = InMemoryEventBus()
        try await history.append("BankAccount", "a", count: 6)
        try await history.append("Order", "o1", count: 3)
        var options = OutboxRelay.Options()
        options.batchSize = 2
        let first = OutboxRelay(store: history.store, bus: bus, topics: testTopics, options: options)
        let running = run(first)
        try await waitUntil { first.status.publishedPosition == 9 }
        running.cancel()
        _ = try? await running.value
        // As if the process had died before its last checkpoints reached the disk.
        try await history.store.saveCheckpoint("outbox-relay", position: 2)
        try await history.append("Order", "o2")

        let second = OutboxRelay(store: history.store, bus: bus, topics: testTopics, options: options)
        let again = run(second)
        defer { again.cancel() }
        try await waitUntil { second.status.publishedPosition == 10 }
        let ids = try await bus.allRecords(of: "BankAccount").map(\.headers["ce_id"]) + bus.allRecords(of: "OnNewOrder").map(\.headers["ce_id"])
        #expect(ids.count == 10 && Set(ids).count == 10, "every stored event on the bus once")
    }

    @Test func recordsWithoutTheRelaysSignatureNeitherHideEventsNorPassForEvidence() async throws {
        let history = History()
        let bus = InMemoryEventBus()
        var options = OutboxRelay.Options()
        options.signingKey = SymmetricKey(size: .bits256)
        try await history.append("BankAccount", "a", count: 2)
        let stored = try await history.store.readAll(fromPosition: 1, maxCount: 10)
        // Someone else wrote records that claim the store's next events, and one beyond its head.
        try await bus.ensureTopic("BankAccount", partitions: 3)
        let forger = try await bus.producer(for: "BankAccount", onRetry: nil)
        try await forger.send([
            OutgoingRecord(key: "a", value: Array("{}".utf8), headers: ["ce_position": "1", "ce_id": stored[0].eventId]),
            OutgoingRecord(key: "a", value: Array("{}".utf8), headers: ["ce_position": "9", "ce_id": "forged"]),
        ])
        let relay = OutboxRelay(store: history.store, bus: bus, topics: testTopics, options: options)
        let running = run(relay)
        defer { running.cancel() }
        try await waitUntil { relay.status.publishedPosition == 2 }
        let signed = try await bus.allRecords(of: "BankAccount").filter { $0.headers["cqrs_signature"] != nil }
        #expect(signed.map(\.headers["ce_id"]) == stored.map(\.eventId), "both real events published despite the forged claim")
        #expect(history.store.writeRefusal == nil, "a forged record is no evidence of loss")
    }

    @Test func aBusHoldingEventsTheStoreLostStopsTheRelayAndRefusesAppends() async throws {
        let bus = InMemoryEventBus()
        let key = SymmetricKey(size: .bits256)
        var options = OutboxRelay.Options()
        options.signingKey = key
        let original = History()
        try await original.append("BankAccount", "a", count: 3)
        let first = OutboxRelay(store: original.store, bus: bus, topics: testTopics, options: options)
        let running = run(first)
        try await waitUntil { first.status.publishedPosition == 3 }
        running.cancel()
        _ = try? await running.value

        // The store is restored from a backup taken after its first event: it lost two.
        let restored = History()
        let kept = try await original.store.readAll(fromPosition: 1, maxCount: 1)[0]
        _ = try await restored.store.append(
            AppendRequest(
                streamId: kept.streamId, expected: .noStream,
                events: [NewEvent(eventId: kept.eventId, type: kept.type, data: kept.data, correlationId: kept.correlationId)]))
        let second = OutboxRelay(store: restored.store, bus: bus, topics: testTopics, options: options)
        let again = run(second)
        defer { again.cancel() }
        try await waitUntil { restored.store.writeRefusal != nil }
        #expect(second.status.lastError?.contains("the relay stopped") == true)
        #expect(restored.store.writeRefusal?.contains("position 3") == true)
        await #expect(throws: EventStoreError.self) { try await restored.append("BankAccount", "b") }
        #expect(try await bus.allRecords(of: "BankAccount").count == 3, "nothing more published")
    }
}
