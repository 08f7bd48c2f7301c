import BrokerClient
import EventBus
import EventStore
import Foundation
import Outbox
import RPCCore
import RPCTransportTCP
import TestSupport
import Testing

/// The relay against the real broker binary, through `BrokerEventBus`: what the unit tests on the
/// in-memory bus show, over a real socket and a broker that is killed and started again.
@Suite(.serialized) struct OutboxRelayBrokerTests {
    let brokerData = TemporaryDirectory(prefix: "relay-broker")

    func startBroker() throws -> (ServerProcess, RPCClient, BrokerEventBus) {
        let broker = try ServerProcess("broker", arguments: ["--data-dir", brokerData.path])
        let client = RPCClient(transport: TCPClientTransport(host: "127.0.0.1", port: broker.port))
        var options = BrokerEventBus.Options()
        options.requestTimeout = .seconds(1)
        return (broker, client, BrokerEventBus(client: client, options: options))
    }

    func stop(_ broker: ServerProcess, _ client: RPCClient) {
        client.close()
        broker.terminate()
        brokerData.cleanup()
    }

    @Test func eventsStoredWhileTheBrokerIsDownArriveInOrderOnceItReturns() async throws {
        let (broker, client, bus) = try startBroker()
        defer { stop(broker, client) }
        let history = History()
        var options = OutboxRelay.Options()
        options.batchSize = 7
        let relay = OutboxRelay(store: history.store, bus: bus, topics: testTopics, options: options)
        let running = Task { try await relay.run() }
        defer { running.cancel() }

        for account in ["a", "b", "c"] { try await history.append("BankAccount", account) }
        try await waitUntil { relay.status.publishedPosition == 3 }

        broker.kill()
        for _ in 1...10 {
            for account in ["a", "b", "c"] { try await history.append("BankAccount", account) }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(relay.status.publishedPosition == 3, "nothing can be published while the broker is down")
        try broker.start()
        try await waitUntil { relay.status.publishedPosition == 33 && relay.status.brokerConnected }

        let published = try await bus.allRecords(of: "BankAccount")
        let positions = published.compactMap { $0.headers["ce_position"].flatMap(Int64.init) }
        #expect(Set(positions) == Set(1...33), "every stored event reached the broker")
        for account in ["a", "b", "c"] {
            let versions = published.filter { $0.key == account }.compactMap { $0.headers["ce_streamversion"].flatMap(Int64.init) }
            let firstSeen = versions.reduce(into: [Int64]()) { if !$0.contains($1) { $0.append($1) } }
            #expect(firstSeen == Array(1...11), "per-key order holds for \(account)")
        }
        let record = try #require(published.first { $0.headers["ce_position"] == "1" })
        #expect(record.headers["ce_type"] == "Happened")
        #expect(record.headers["ce_subject"] == "BankAccount-a")
        #expect(try await history.store.checkpoint("outbox-relay") == 33)
    }

    /// A crash after the broker took a batch but before the checkpoint was saved: the next run
    /// replays from the older checkpoint, and must not publish those events a second time.
    @Test func eventsPublishedAfterTheCheckpointAreNotPublishedAgain() async throws {
        let (broker, client, bus) = try startBroker()
        defer { stop(broker, client) }
        let history = History()
        for account in ["a", "b", "c", "d"] { try await history.append("BankAccount", account, count: 4) }
        var options = OutboxRelay.Options()
        options.batchSize = 5
        let first = OutboxRelay(store: history.store, bus: bus, topics: testTopics, options: options)
        let running = Task { try await first.run() }
        try await waitUntil { first.status.publishedPosition == 16 }
        running.cancel()
        _ = try? await running.value
        // As if the process had died before its last checkpoints reached the disk.
        try await history.store.saveCheckpoint("outbox-relay", position: 3)
        for account in ["a", "b"] { try await history.append("BankAccount", account) }

        let second = OutboxRelay(store: history.store, bus: bus, topics: testTopics, options: options)
        let again = Task { try await second.run() }
        defer { again.cancel() }
        try await waitUntil { second.status.publishedPosition == 18 }
        let ids = try await bus.allRecords(of: "BankAccount").compactMap { $0.headers["ce_id"] }
        #expect(ids.count == 18, "every stored event on the broker once, not \(ids.count) records")
        #expect(Set(ids).count == 18)
    }
}
