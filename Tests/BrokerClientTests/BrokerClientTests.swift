import BrokerClient
import Contracts
import Foundation
import RPCCore
import RPCTransportTCP
import Synchronization
import TestSupport
import Testing

/// The real broker binary on an ephemeral port and a temporary data directory.
struct BrokerProcess {
    let server: ServerProcess
    let data = TemporaryDirectory(prefix: "broker-client")

    init() throws { server = try ServerProcess("broker", arguments: ["--data-dir", data.path]) }

    func client() -> RPCClient { RPCClient(transport: TCPClientTransport(host: "127.0.0.1", port: server.port)) }

    func stop() {
        server.terminate()
        data.cleanup()
    }
}

@Suite(.serialized) struct BrokerClientTests {
    @Test func theProducerBatchesConcurrentSendsAndStoresEachRecordOnce() async throws {
        let broker = try BrokerProcess()
        defer { broker.stop() }
        let client = broker.client()
        let api = BrokerAPI.Broker.Client(client)
        _ = try await api.createTopic(.init(name: "t", partitions: 3))
        let producer = try await BrokerProducer(client: client, topic: "t")
        let positions = try await withThrowingTaskGroup(of: (Int, BrokerProducer.Position).self) { group in
            for i in 0..<2000 {
                group.addTask {
                    (i, try await producer.send(key: "k\(i % 10)", value: try RawJSON(validating: #"{"i":\#(i)}"#)))
                }
            }
            var all: [Int: BrokerProducer.Position] = [:]
            for try await (i, position) in group { all[i] = position }
            return all
        }
        #expect(Set(positions.values).count == 2000)
        var stored = 0
        for partition in 0..<3 {
            let reply = try await api.fetch(.init(topic: "t", partition: partition, offset: 0, maxRecords: 5000, maxBytes: 8 << 20))
            stored += reply.records.count
            #expect(reply.highWatermark == Int64(reply.records.count))
        }
        #expect(stored == 2000)
        let described = try await api.describeTopic(.init(name: "t"))
        let batches = described.partitions.map(\.sizeBytes).reduce(0, +)
        #expect(batches < 2000 * 120, "records were batched: \(batches) bytes for 2000 records")
    }

    @Test func twoGroupConsumersSharePartitionsAndCommitEverythingOnShutdown() async throws {
        let broker = try BrokerProcess()
        defer { broker.stop() }
        let client = broker.client()
        let api = BrokerAPI.Broker.Client(client)
        _ = try await api.createTopic(.init(name: "t", partitions: 4))
        let producer = try await BrokerProducer(client: client, topic: "t")
        for i in 0..<400 { _ = try await producer.send(key: "k\(i)", value: try RawJSON(validating: "\(i)")) }
        let seen = Seen()
        var options = GroupConsumer.Options()
        options.sessionTimeoutMs = 3000
        options.autoCommitInterval = .milliseconds(200)
        func member(_ name: String) -> Task<Void, any Error> {
            var named = options
            named.clientId = name
            let consumer = GroupConsumer(client: broker.client(), group: "g", topics: ["t"], options: named)
            return Task {
                try await consumer.run { record in
                    seen.add(name, Int64(record.partition) << 32 | record.offset)
                }
            }
        }
        let a = member("a")
        let b = member("b")
        let deadline = ContinuousClock.now + .seconds(20)
        while seen.all().count < 400 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        a.cancel()
        b.cancel()
        _ = await a.result
        _ = await b.result
        #expect(seen.all().count == 400)
        let committed = try await api.fetchCommittedOffsets(.init(group: "g")).offsets
        let hw = try await api.describeTopic(.init(name: "t")).partitions
        #expect(committed.count == 4)
        for offset in committed { #expect(offset.offset == hw[offset.partition].highWatermark) }
    }

    /// A member cancelled while its JoinGroup was under way left nothing behind to leave with:
    /// the broker kept it (and the partitions it was granted) until its session timed out. A
    /// query-service stopped right after a rebuild (which rejoins its members) held a partition
    /// of another replica's projection that long. Each member here is cancelled somewhere in
    /// its join; none may stay in the group.
    @Test func aMemberCancelledWhileJoiningLeavesTheGroup() async throws {
        let broker = try BrokerProcess()
        defer { broker.stop() }
        let client = broker.client()
        let api = BrokerAPI.Broker.Client(client)
        _ = try await api.createTopic(.init(name: "t", partitions: 2))
        var options = GroupConsumer.Options()
        options.sessionTimeoutMs = 60_000
        for attempt in 0..<40 {
            let consumer = GroupConsumer(client: client, group: "g", topics: ["t"], options: options)
            let member = Task { try await consumer.run { _ in } }
            // From before the request is written to after its answer is on the way.
            try await Task.sleep(for: .microseconds(attempt * 50))
            member.cancel()
            _ = await member.result
        }
        let group = try await api.describeGroup(.init(group: "g"))
        #expect(group.members.map(\.memberId) == [])
    }
}

/// Records each member saw, as partition << 32 | offset.
final class Seen: Sendable {
    private let byMember = Mutex<[String: Set<Int64>]>([:])

    func add(_ member: String, _ position: Int64) { _ = byMember.withLock { $0[member, default: []].insert(position) } }
    func all() -> Set<Int64> { byMember.withLock { $0.values.reduce(Set()) { $0.union($1) } } }
}
