import ArgumentParser
import BenchSupport
import Contracts
import EventBus
import Foundation
import KafkaClient
import RPCCore
import RPCTransportTCP
import Synchronization

typealias BrokerAPI = CqrsBrokerV1

/// kafka-bench: the broker's Kafka port driven by librdkafka from Swift (KafkaClient's bus, as the
/// services use it), shaped like broker-bench's jframe cases and kafka_bench.py's confluent-kafka
/// ones. Python's per-message callbacks cost the Python client about a core at batch 1,000, so
/// these cases show what the broker does with a client that is not the limit. One JSON line per
/// case on stdout; topics are made through the Kafka port and deleted through the jframe port.
@main
struct KafkaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-bench", abstract: "Benchmark the broker's Kafka port with librdkafka (KafkaClient).",
        subcommands: [Produce.self, Consume.self])
}

struct KafkaTarget: ParsableArguments {
    @Option(help: "The broker's Kafka port, host:port.") var bootstrap: String
    @Option(help: "The broker's jframe port, host:port (to delete the topic afterwards).") var jframe: String

    func bus() -> KafkaEventBus { KafkaEventBus(location: KafkaBusLocation(bootstrapServers: [bootstrap])) }

    /// A fresh one-partition topic.
    func freshTopic(_ bus: KafkaEventBus) async throws -> String {
        let name = "kbench-swift-\(UUID().uuidString.prefix(8))"
        try await bus.ensureTopic(name, partitions: 1)
        return name
    }

    func delete(_ topic: String) async throws {
        let client = RPCClient(transport: try TCPClientTransport(address: jframe))
        defer { client.close() }
        _ = try await BrokerAPI.Broker.Client(client).deleteTopic(.init(name: topic))
    }
}

/// A 200-byte JSON string, as the other cases send.
let value = Array(("\"" + String(repeating: "x", count: 198) + "\"").utf8)

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "P idempotent producers (acks=all), each sending B records and waiting for all B deliveries before the next B.")
    @OptionGroup var target: KafkaTarget
    @Option var batch = 1
    @Option var producers = 1
    @Option var seconds = 3.0

    func run() async throws {
        let bus = target.bus()
        defer { bus.close() }
        let topic = try await target.freshTopic(bus)
        var sessions: [any TopicProducer] = []
        for _ in 0..<producers { sessions.append(try await bus.producer(for: topic, onRetry: nil)) }
        let records = (0..<batch).map { _ in OutgoingRecord(key: nil, value: value, partition: 0) }
        let chosen = sessions
        let result = try await closedLoop(concurrency: producers, seconds: seconds) { worker, _ in try await chosen[worker].send(records) }
        sessions.removeAll()
        try await target.delete(topic)
        emit([
            "case": "kafka_librdkafka_produce", "batch": batch, "producers": producers, "produces": result.latenciesUs.count,
            "records_per_s": (Double(result.latenciesUs.count * batch) / result.wallSeconds).rounded(),
            "p50_ms": percentile(result.latenciesUs, 0.5) / 1000, "p99_ms": percentile(result.latenciesUs, 0.99) / 1000,
        ])
    }
}

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fills one partition with N records, then reads it from the start as a group member: records/s from the first record on.")
    @OptionGroup var target: KafkaTarget
    @Option var records = 500_000

    func run() async throws {
        let bus = target.bus()
        defer { bus.close() }
        let topic = try await target.freshTopic(bus)
        let producer = try await bus.producer(for: topic, onRetry: nil)
        let page = (0..<1000).map { _ in OutgoingRecord(key: nil, value: value, partition: 0) }
        for _ in 0..<(records / 1000) { try await producer.send(page) }

        final class Progress: Sendable {
            /// Records after the first batch, when the first batch came, when the last did.
            let state = Mutex<(count: Int, first: ContinuousClock.Instant?, last: ContinuousClock.Instant?)>((0, nil, nil))
            let seen = Atomic<Int>(0)
        }
        let progress = Progress()
        let wanted = records / 1000 * 1000
        var options = SubscriptionOptions()
        options.maxRecords = 10_000
        options.startOffset = { _, _ in 0 }
        let member = Task {
            try await bus.subscription(group: "kbench-\(UUID().uuidString.prefix(8))", topics: [topic], options: options).run { batch in
                let now = ContinuousClock.now
                let total = progress.seen.wrappingAdd(batch.count, ordering: .relaxed).newValue
                progress.state.withLock { state in
                    if state.first == nil {
                        state.first = now  // the clock starts once the member is in and reading
                    } else {
                        state.count += batch.count
                    }
                    if total >= wanted, state.last == nil { state.last = now }
                }
            }
        }
        while progress.state.withLock({ $0.last == nil }) { try await Task.sleep(for: .milliseconds(5)) }
        member.cancel()
        _ = try? await member.value
        try await target.delete(topic)
        let (count, first, last) = progress.state.withLock { $0 }
        emit(["case": "kafka_librdkafka_consume", "records": count, "records_per_s": (Double(count) / (last! - first!).seconds).rounded()])
    }
}
