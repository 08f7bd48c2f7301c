import Checksums
import Crypto
import EventStore
import Foundation
import Testing

@testable import Outbox

/// What the relay takes as evidence that the store lost events: only its own signed records,
/// compared with the store by position and id.
@Suite struct RelayEvidenceTests {
    func store(events count: Int) async throws -> InMemoryEventStore {
        let store = InMemoryEventStore()
        for index in 0..<count {
            _ = try await store.append(
                AppendRequest(
                    streamId: "BankAccount-a", expected: .any, events: [NewEvent(eventId: "e\(index + 1)", type: "T", data: Array("{}".utf8))]))
        }
        return store
    }

    @Test func theBrokersRecordsMustBeTheStoresEventsAtTheirPositions() async throws {
        let store = try await store(events: 3)
        try await OutboxRelay.check([2: "e2", 3: "e3"], against: store)
        await #expect {
            try await OutboxRelay.check([3: "e3", 5: "e5"], against: store)
        } throws: { error in
            guard case EventStoreError.dataLoss(let reason) = error else { return false }
            return reason.contains("position 5") && reason.contains("last event is at position 3")
        }
        await #expect {
            try await OutboxRelay.check([2: "lost-2"], against: store)
        } throws: { error in
            guard case EventStoreError.dataLoss(let reason) = error else { return false }
            return reason.contains("event lost-2 at position 2, where the store holds event e2")
        }
    }

    @Test func onlySignedRecordsAreTheRelaysOwn() throws {
        let key = SymmetricKey(size: .bits256)
        let event = RecordedEvent(
            eventId: "e7", streamId: "BankAccount-a", type: "T", schemaVersion: 1, streamVersion: 4, position: 7, recordedAt: 0,
            correlationId: nil, causationId: nil, data: Array("{}".utf8))
        let headers = OutboxRelay.record(for: event, key: "a", signingKey: key).headers
        #expect(OutboxRelay.isOwn(headers, position: 7, eventId: "e7", key: key))
        // Another position, id, version or key, or no signature: not the relay's.
        #expect(!OutboxRelay.isOwn(headers, position: 8, eventId: "e7", key: key))
        #expect(!OutboxRelay.isOwn(headers, position: 7, eventId: "e8", key: key))
        var bumped = headers
        bumped["ce_streamversion"] = "5"
        #expect(!OutboxRelay.isOwn(bumped, position: 7, eventId: "e7", key: key))
        #expect(!OutboxRelay.isOwn(headers, position: 7, eventId: "e7", key: SymmetricKey(size: .bits256)))
        var unsigned = headers
        unsigned["cqrs_signature"] = nil
        #expect(!OutboxRelay.isOwn(unsigned, position: 7, eventId: "e7", key: key))
        #expect(OutboxRelay.isOwn(unsigned, position: 7, eventId: "e7", key: nil), "without a key every record counts")
    }

    @Test func hexRoundTrips() {
        #expect(Hex.string([0x00, 0x0F, 0xAB, 0xFF]) == "000fabff")
        #expect([UInt8]([0x00, 0x0F, 0xAB, 0xFF]).withUnsafeBytes { Hex.string($0) } == "000fabff")
        #expect([UInt8]().withUnsafeBytes { Hex.string($0) } == "")
        let digest = SHA256.hash(data: Array("cqrs".utf8))
        #expect(digest.withUnsafeBytes { Hex.string($0) } == Hex.string(digest), "stored command digests must not change")
        #expect(Hex.bytes("000fABff") == [0x00, 0x0F, 0xAB, 0xFF])
        #expect(Hex.bytes("abc") == nil && Hex.bytes("zz") == nil)
    }
}
