import BrokerClient
import CommandHandling
import Contracts
import Domain
import EventStore
import Foundation
import Logging
import RPCCore
import RPCTransportTCP
import TestSupport
import Testing

/// The relay against the real broker binary.
@Suite(.serialized) struct OutboxRelayTests {
    let brokerData = TemporaryDirectory(prefix: "relay-broker")

    func startBroker() throws -> (ServerProcess, RPCClient) {
        let broker = try ServerProcess("broker", arguments: ["--data-dir", brokerData.path])
        return (broker, RPCClient(transport: TCPClientTransport(host: "127.0.0.1", port: broker.port)))
    }

    func stop(_ broker: ServerProcess, _ client: RPCClient) {
        client.close()
        broker.terminate()
        brokerData.cleanup()
    }

    /// Every record of a topic, all partitions, in offset order per partition.
    func records(_ topic: String, client: RPCClient) async throws -> [BrokerAPI.ConsumedRecord] {
        let broker = BrokerAPI.Broker.Client(client)
        let description = try await broker.describeTopic(.init(name: topic))
        var all: [BrokerAPI.ConsumedRecord] = []
        for partition in description.partitions {
            var offset: Int64 = 0
            while true {
                let page = try await broker.fetch(.init(topic: topic, partition: partition.partition, offset: offset, maxRecords: 1000))
                all += page.records
                guard let last = page.records.last else { break }
                offset = last.offset + 1
            }
        }
        return all
    }

    @Test func eventsStoredWhileTheBrokerIsDownArriveInOrderOnceItReturns() async throws {
        let (broker, client) = try startBroker()
        defer { stop(broker, client) }

        let side = WriteSide()
        var options = OutboxRelay.Options()
        options.batchSize = 7
        options.producer.requestTimeout = .seconds(1)
        let relay = OutboxRelay(store: side.store, broker: client, topics: Domains.topics, options: options)
        let running = Task { try await relay.run() }
        defer { running.cancel() }

        for account in ["a", "b", "c"] { try await side.open(account, balance: 0) }
        try await waitUntil { relay.status.publishedPosition == 3 }

        broker.kill()
        for round in 1...10 {
            for account in ["a", "b", "c"] { try await side.send(DepositFunds(accountId: account, amount: eur(Int64(round)))) }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(relay.status.publishedPosition == 3, "nothing can be published while the broker is down")
        try broker.start()
        try await waitUntil { relay.status.publishedPosition == 33 && relay.status.brokerConnected }

        let published = try await records("BankAccount", client: client)
        let positions = published.compactMap { $0.headers?["ce_position"].flatMap(Int64.init) }
        #expect(Set(positions) == Set(1...33), "every stored event reached the broker")
        for account in ["a", "b", "c"] {
            let versions = published.filter { $0.key == account }.compactMap { $0.headers?["ce_streamversion"].flatMap(Int64.init) }
            let firstSeen = versions.reduce(into: [Int64]()) { if !$0.contains($1) { $0.append($1) } }
            #expect(firstSeen == Array(1...11), "per-key order holds for \(account)")
        }
        let record = try #require(published.first { $0.headers?["ce_position"] == "1" })
        #expect(record.headers?["ce_type"] == "AccountOpened")
        #expect(record.headers?["ce_subject"] == "BankAccount-a")
        #expect(try await side.store.checkpoint("outbox-relay") == 33)
    }

    @Test func aRestartedRelayStartsFromItsCheckpoint() async throws {
        let (broker, client) = try startBroker()
        defer { stop(broker, client) }
        let side = WriteSide()
        let customer = Customer(email: "ada@example.com", firstName: "Ada", lastName: "Lovelace")
        for index in 1...5 { try await side.send(PlaceOrder(orderId: "o\(index)", customer: customer, description: "d", quantity: index)) }

        let first = OutboxRelay(store: side.store, broker: client, topics: Domains.topics)
        let running = Task { try await first.run() }
        try await waitUntil { first.status.publishedPosition == 5 }
        running.cancel()
        _ = try? await running.value
        for index in 6...8 { try await side.send(PlaceOrder(orderId: "o\(index)", customer: customer, description: "d", quantity: index)) }

        let second = OutboxRelay(store: side.store, broker: client, topics: Domains.topics)
        let again = Task { try await second.run() }
        defer { again.cancel() }
        try await waitUntil { second.status.publishedPosition == 8 }
        let published = try await records("OnNewOrder", client: client)
        #expect(published.count == 8, "no event published twice after a clean stop")
        #expect(Set(published.compactMap(\.key)) == Set((1...8).map { "o\($0)" }))
    }

    /// A crash after the broker took a batch but before the checkpoint was saved: the next run
    /// replays from the older checkpoint, and must not publish those events a second time.
    @Test func eventsPublishedAfterTheCheckpointAreNotPublishedAgain() async throws {
        let (broker, client) = try startBroker()
        defer { stop(broker, client) }
        let side = WriteSide()
        for account in ["a", "b", "c", "d"] { try await side.open(account, balance: 0) }
        for round in 1...3 {
            for account in ["a", "b", "c", "d"] { try await side.send(DepositFunds(accountId: account, amount: eur(Int64(round)))) }
        }
        var options = OutboxRelay.Options()
        options.batchSize = 5
        let first = OutboxRelay(store: side.store, broker: client, topics: Domains.topics, options: options)
        let running = Task { try await first.run() }
        try await waitUntil { first.status.publishedPosition == 16 }
        running.cancel()
        _ = try? await running.value
        // As if the process had died before its last checkpoints reached the disk.
        try await side.store.saveCheckpoint("outbox-relay", position: 3)
        for account in ["a", "b"] { try await side.send(DepositFunds(accountId: account, amount: eur(9))) }

        let second = OutboxRelay(store: side.store, broker: client, topics: Domains.topics, options: options)
        let again = Task { try await second.run() }
        defer { again.cancel() }
        try await waitUntil { second.status.publishedPosition == 18 }
        let ids = try await records("BankAccount", client: client).compactMap { $0.headers?["ce_id"] }
        #expect(ids.count == 18, "every stored event on the broker once, not \(ids.count) records")
        #expect(Set(ids).count == 18)
    }
}
