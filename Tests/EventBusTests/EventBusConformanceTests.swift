import BrokerClient
import EventBus
import Foundation
import KafkaClient
import Partitioning
import RPCCore
import RPCTransportTCP
import Synchronization
import TestSupport
import Testing
import WallTime

/// The buses every test of the conformance suite runs against: the one in memory, our broker
/// binary over jframe, and librdkafka's client (KafkaEventBus) on that broker's Kafka port.
enum BusKind: String, CaseIterable, CustomTestStringConvertible {
    case inMemory, broker, kafka
    var testDescription: String { rawValue }

    func make() throws -> BusFixture {
        switch self {
        case .inMemory: return BusFixture(bus: InMemoryEventBus(clock: ManualWallClock(1_763_899_200_000)), stop: {})
        case .broker:
            let data = TemporaryDirectory(prefix: "bus-broker")
            let server = try ServerProcess("broker", arguments: ["--data-dir", data.path])
            let client = RPCClient(transport: TCPClientTransport(host: "127.0.0.1", port: server.port))
            var options = BrokerEventBus.Options()
            options.requestTimeout = .seconds(5)
            return BusFixture(bus: BrokerEventBus(client: client, options: options)) {
                client.close()
                server.terminate()
                data.cleanup()
            }
        case .kafka:
            let data = TemporaryDirectory(prefix: "bus-kafka")
            let server = try ServerProcess(
                "broker", arguments: ["--data-dir", data.path, "--kafka-listen", "127.0.0.1:0"], announcements: ["listening-kafka"])
            var options = KafkaEventBus.Options()
            options.requestTimeout = .seconds(5)
            let bus = KafkaEventBus(
                location: KafkaBusLocation(bootstrapServers: ["127.0.0.1:\(server.port(of: "listening-kafka")!)"]), options: options)
            return BusFixture(bus: bus) {
                bus.close()
                server.terminate()
                data.cleanup()
            }
        }
    }
}

struct BusFixture {
    let bus: any EventPublisher & EventSubscriber
    let stop: () -> Void
}

func json(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Collects what a subscription delivers.
final class Delivered: Sendable {
    private let batches = Mutex<[[BusRecord]]>([])
    func add(_ batch: [BusRecord]) { batches.withLock { $0.append(batch) } }
    var all: [[BusRecord]] { batches.withLock { $0 } }
    var records: [BusRecord] { all.flatMap { $0 } }
}

@Suite struct EventBusConformanceTests {
    @Test(arguments: BusKind.allCases) func topicsAreCreatedOnceAndDescribed(kind: BusKind) async throws {
        let fixture = try kind.make()
        defer { fixture.stop() }
        let bus = fixture.bus
        #expect(try await bus.partitions(of: "missing") == nil)
        try await bus.ensureTopic("events", partitions: 3)
        try await bus.ensureTopic("events", partitions: 5)
        let partitions = try #require(try await bus.partitions(of: "events"))
        #expect(partitions.map(\.partition) == [0, 1, 2], "an existing topic is left as it is")
        #expect(partitions.allSatisfy { $0.logStartOffset == 0 && $0.highWatermark == 0 })
    }

    @Test(arguments: BusKind.allCases) func keyedRecordsLandOnTheirKeysPartitionInTheOrderSent(kind: BusKind) async throws {
        let fixture = try kind.make()
        defer { fixture.stop() }
        let bus = fixture.bus
        try await bus.ensureTopic("events", partitions: 3)
        let producer = try await bus.producer(for: "events", onRetry: nil)
        let keys = ["a", "b", "c", "d", "e"]
        for round in 0..<4 {
            try await producer.send(
                keys.map { OutgoingRecord(key: $0, value: json(#"{"n":\#(round)}"#), headers: ["ce_id": "\($0)-\(round)"], timestamp: 5) })
        }
        let partitions = try #require(try await bus.partitions(of: "events"))
        #expect(partitions.map(\.highWatermark).reduce(0, +) == 20)
        let records = try await bus.allRecords(of: "events")
        for key in keys {
            let mine = records.filter { $0.key == key }
            #expect(mine.map(\.headers["ce_id"]) == (0..<4).map { "\(key)-\($0)" }, "per-key order for \(key)")
            #expect(Set(mine.map(\.partition)) == [Partitioner.partition(forKey: Array(key.utf8), partitions: 3)])
            #expect(mine.map(\.value) == (0..<4).map { json(#"{"n":\#($0)}"#) })
        }
        for partition in 0..<3 {
            #expect(
                records.filter { $0.partition == partition }.map(\.offset)
                    == (0..<Int64(records.filter { $0.partition == partition }.count)).map { $0 })
        }
        #expect(records.allSatisfy { $0.topic == "events" })
    }

    @Test(arguments: BusKind.allCases) func readsPageFromAnOffsetAndRefuseOnesBeyondTheLog(kind: BusKind) async throws {
        let fixture = try kind.make()
        defer { fixture.stop() }
        let bus = fixture.bus
        try await bus.ensureTopic("events", partitions: 1)
        let producer = try await bus.producer(for: "events", onRetry: nil)
        try await producer.send((0..<10).map { OutgoingRecord(key: "k", value: json("\($0)")) })
        #expect(try await bus.read("events", partition: 0, from: 4, maxRecords: 3).map(\.offset) == [4, 5, 6])
        #expect(try await bus.read("events", partition: 0, from: 10, maxRecords: 3).isEmpty, "the end of the log")
        await #expect(throws: OffsetOutOfRange.self) { _ = try await bus.read("events", partition: 0, from: 11, maxRecords: 3) }
    }

    @Test(arguments: BusKind.allCases) func aMemberGetsEveryPartitionInOrderFromWhereTheApplicationSays(kind: BusKind) async throws {
        let fixture = try kind.make()
        defer { fixture.stop() }
        let bus = fixture.bus
        try await bus.ensureTopic("events", partitions: 3)
        let producer = try await bus.producer(for: "events", onRetry: nil)
        try await producer.send((0..<30).map { OutgoingRecord(key: "k\($0 % 6)", value: json("\($0)")) })
        var options = SubscriptionOptions()
        options.maxWait = .milliseconds(100)
        options.maxRecords = 4
        // The application kept offsets itself for partition 0 (it handled 2 records there).
        options.startOffset = { _, partition in partition == 0 ? 2 : nil }
        let delivered = Delivered()
        let member = Task { try await bus.subscription(group: "g", topics: ["events"], options: options).run { delivered.add($0) } }
        defer { member.cancel() }
        try await waitUntil("27 records delivered", timeout: .seconds(10)) { delivered.records.count == 28 }
        try await producer.send([OutgoingRecord(key: "k0", value: json("30"))])
        try await waitUntil("the record sent later", timeout: .seconds(10)) { delivered.records.count == 29 }
        for batch in delivered.all {
            #expect(batch.count <= 4 && Set(batch.map(\.partition)).count == 1, "a batch is one partition's")
        }
        let all = try await bus.allRecords(of: "events")
        for partition in 0..<3 {
            let got = delivered.records.filter { $0.partition == partition }.map(\.offset)
            let stored = all.filter { $0.partition == partition }.map(\.offset).filter { partition != 0 || $0 >= 2 }
            #expect(got == stored, "partition \(partition) in offset order, from the application's offset")
        }
    }

    @Test(arguments: BusKind.allCases) func membersShareAPartitionSetAndTheLastTakesOverWhatALeaverHad(kind: BusKind) async throws {
        let fixture = try kind.make()
        defer { fixture.stop() }
        let bus = fixture.bus
        try await bus.ensureTopic("events", partitions: 4)
        var options = SubscriptionOptions()
        options.maxWait = .milliseconds(100)
        let first = Delivered()
        let second = Delivered()
        let one = Task { try await bus.subscription(group: "g", topics: ["events"], options: options).run { first.add($0) } }
        defer { one.cancel() }
        let two = Task { try await bus.subscription(group: "g", topics: ["events"], options: options).run { second.add($0) } }
        let producer = try await bus.producer(for: "events", onRetry: nil)
        // Keep sending until both members have received records: the group has settled.
        var sent = 0
        try await waitUntil("both members consume", timeout: .seconds(30)) {
            try await producer.send((0..<8).map { OutgoingRecord(key: "k\(sent + $0)", value: json("\(sent + $0)")) })
            sent += 8
            try await Task.sleep(for: .milliseconds(50))
            return !first.records.isEmpty && !second.records.isEmpty
        }
        let settled = sent
        try await waitUntil("every record delivered", timeout: .seconds(10)) {
            Set(first.records.map(\.value) + second.records.map(\.value)).count == settled
        }
        two.cancel()
        _ = try? await two.value
        let before = first.records.count
        try await producer.send((0..<8).map { OutgoingRecord(key: "late\($0)", value: json("\(1000 + $0)")) })
        try await waitUntil("the remaining member takes every partition", timeout: .seconds(30)) {
            Set(first.records.dropFirst(before).compactMap(\.value)).isSuperset(of: (0..<8).map { json("\(1000 + $0)") })
        }
    }
}
