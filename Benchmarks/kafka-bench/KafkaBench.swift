import ArgumentParser
import BenchSupport
import Contracts
import EventBus
import Foundation
import KafkaClient
import KafkaMessages
import KafkaWire
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
        subcommands: [Produce.self, ProduceRaw.self, Consume.self])
}

struct KafkaTarget: ParsableArguments {
    @Option(help: "The broker's Kafka port, host:port.") var bootstrap: String
    @Option(help: "The broker's jframe port, host:port (to delete the topic afterwards).") var jframe: String
    @Option(name: .customLong("property"), help: "A librdkafka property over the bus's defaults, name=value (repeatable), as --bus takes them.")
    var properties: [String] = []

    func bus() throws -> KafkaEventBus {
        let query = properties.isEmpty ? "" : "?" + properties.joined(separator: "&")
        return KafkaEventBus(location: try KafkaBusLocation(url: "kafka://\(bootstrap)\(query)"))
    }

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

/// CPU time of this process so far (every thread, librdkafka's included), user and system:
/// `client_cores` says when the client, not the broker, is the limit.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The shape of a produce case, and the line it reports.
struct ProduceShape: ParsableArguments {
    @Option(help: "Records per request.") var batch = 1
    @Option(help: "Producers, each with its own connection.") var producers = 1
    @Option(help: "How long to produce.") var seconds = 3.0

    /// One JSON line: records/s, p50/p99 of a request (from ascending µs), the client's cores.
    func report(_ name: String, latenciesUs: [Double], wallSeconds: Double, cpuSeconds: Double) {
        emit([
            "case": name, "batch": batch, "producers": producers, "produces": latenciesUs.count,
            "records_per_s": (Double(latenciesUs.count * batch) / wallSeconds).rounded(),
            "p50_ms": percentile(latenciesUs, 0.5) / 1000, "p99_ms": percentile(latenciesUs, 0.99) / 1000,
            "client_cores": (cpuSeconds / wallSeconds * 100).rounded() / 100,
        ])
    }
}

/// A 200-byte JSON string, as the other cases send.
let value = Array(("\"" + String(repeating: "x", count: 198) + "\"").utf8)

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "P idempotent producers (acks=all), each sending B records and waiting for all B deliveries before the next B.")
    @OptionGroup var target: KafkaTarget
    @OptionGroup var shape: ProduceShape

    func run() async throws {
        let bus = try target.bus()
        defer { bus.close() }
        let topic = try await target.freshTopic(bus)
        var sessions: [any TopicProducer] = []
        for _ in 0..<shape.producers { sessions.append(try await bus.producer(for: topic, onRetry: nil)) }
        let records = (0..<shape.batch).map { _ in OutgoingRecord(key: nil, value: value, partition: 0) }
        // One send each before the clock starts: a session's first send on a topic just made
        // sometimes waits about a second for librdkafka to learn the topic's metadata.
        for session in sessions { try await session.send([records[0]]) }
        let chosen = sessions
        let cpuBefore = processCPUSeconds()
        let result = try await closedLoop(concurrency: shape.producers, seconds: shape.seconds) { worker, _ in try await chosen[worker].send(records)
        }
        let cpuSeconds = processCPUSeconds() - cpuBefore
        sessions.removeAll()
        try await target.delete(topic)
        shape.report("kafka_librdkafka_produce", latenciesUs: result.latenciesUs, wallSeconds: result.wallSeconds, cpuSeconds: cpuSeconds)
    }
}

/// The produce case without a client library: what the broker's Kafka port does when the client
/// is not the limit (librdkafka spends more CPU per record than the broker at batch 100 from 16
/// producers on two cores). Each producer is a thread with one blocking connection, sending a
/// Produce request (v9, acks=all, one uncompressed batch of B records, encoded per request with
/// the broker's own KafkaWire codecs) and reading its response before the next: broker-bench's
/// jframe produce in the same shape.
struct ProduceRaw: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce-raw",
        abstract: "P connections without a client library, each sending B records per Produce request (acks=all) and waiting for the response.")
    @OptionGroup var target: KafkaTarget
    @OptionGroup var shape: ProduceShape

    func run() async throws {
        let bus = try target.bus()
        let topic = try await target.freshTopic(bus)
        bus.close()
        guard let colon = target.bootstrap.lastIndex(of: ":"), let port = UInt16(target.bootstrap[target.bootstrap.index(after: colon)...]) else {
            throw ValidationError("--bootstrap must be an IPv4 host:port")
        }
        let host = String(target.bootstrap[..<colon])
        let (batch, producers) = (shape.batch, shape.producers)
        let outcome = Mutex<(latenciesUs: [Double], failure: String?)>(([], nil))
        let cpuBefore = processCPUSeconds()
        let started = ContinuousClock.now
        let end = started + .milliseconds(Int(shape.seconds * 1000))
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let finished = Atomic<Int>(0)
            for _ in 0..<producers {
                Thread {
                    do {
                        let latencies = try RawProducer(host: host, port: port).run(topic: topic, batch: batch, until: end)
                        outcome.withLock { $0.latenciesUs += latencies }
                    } catch {
                        outcome.withLock { $0.failure = "\(error)" }
                    }
                    if finished.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == producers { done.resume() }
                }.start()
            }
        }
        let wall = (ContinuousClock.now - started).seconds
        let cpuSeconds = processCPUSeconds() - cpuBefore
        try await target.delete(topic)
        let (unsorted, failure) = outcome.withLock { $0 }
        if let failure { throw ValidationError("a raw producer failed: \(failure)") }
        shape.report("kafka_raw_produce", latenciesUs: unsorted.sorted(), wallSeconds: wall, cpuSeconds: cpuSeconds)
    }
}

/// One blocking connection speaking Produce v9 to the broker's Kafka port.
struct RawProducer {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let socket: Int32
    static let version: Int16 = 9

    init(host: String, port: UInt16) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw Failure(description: "\(host) is not an IPv4 address") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Produces until `end`; the latency of every request in µs.
    func run(topic: String, batch: Int, until end: ContinuousClock.Instant) throws -> [Double] {
        defer { close(socket) }
        var records = KafkaRecordBatch()
        records.lastOffsetDelta = Int32(batch - 1)
        records.records = (0..<batch).map { KafkaRecord(offset: Int64($0), timestamp: 0, key: nil, value: value) }
        var latencies: [Double] = []
        var correlationId: Int32 = 0
        while ContinuousClock.now < end {
            let begun = ContinuousClock.now
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            records.baseTimestamp = now
            records.maxTimestamp = now
            for index in records.records.indices { records.records[index].timestamp = now }
            var partition = ProduceRequest.TopicProduceData.PartitionProduceData()
            partition.records = records.encoded()
            var data = ProduceRequest.TopicProduceData()
            data.name = topic
            data.partitionData = [partition]
            var request = ProduceRequest()
            request.acks = -1
            request.timeoutMs = 30_000
            request.topicData = [data]
            correlationId &+= 1
            var writer = KafkaWriter(capacity: 128 + batch * 220)
            writer.writeInt32(0)
            KafkaRequestHeader(apiKey: ProduceRequest.apiKey, apiVersion: Self.version, correlationId: correlationId, clientId: "kafka-bench")
                .encode(into: &writer, flexible: true)
            request.encode(into: &writer, version: Self.version)
            let size = Int32(writer.bytes.count - 4).bigEndian
            withUnsafeBytes(of: size) { writer.bytes.replaceSubrange(0..<4, with: $0) }
            try send(writer.bytes)
            try check(try receive(), correlationId: correlationId)
            latencies.append((ContinuousClock.now - begun).seconds * 1e6)
        }
        return latencies
    }

    private func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var sent = 0
            while sent < buffer.count {
                let n = Glibc.send(socket, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
                sent += n
            }
        }
    }

    private func receiveExactly(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { buffer in
            var got = 0
            while got < count {
                let n = recv(socket, buffer.baseAddress! + got, count - got, 0)
                guard n > 0 else { throw Failure(description: n == 0 ? "the broker closed the connection" : "recv: errno \(errno)") }
                got += n
            }
        }
        return bytes
    }

    /// One response frame's bytes after its size.
    private func receive() throws -> [UInt8] {
        var sizeReader = KafkaReader(try receiveExactly(4))
        return try receiveExactly(Int(try sizeReader.readInt32()))
    }

    private func check(_ frame: [UInt8], correlationId: Int32) throws {
        var reader = KafkaReader(frame)
        guard try reader.readInt32() == correlationId else { throw Failure(description: "a response to another request") }
        try reader.skipTaggedFields()
        let response = try ProduceResponse(from: &reader, version: Self.version)
        for partition in response.responses.flatMap(\.partitionResponses) where partition.errorCode != 0 {
            throw Failure(description: "error \(partition.errorCode): \(partition.errorMessage ?? "")")
        }
    }
}

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fills one partition with N records, then reads it from the start as a group member: records/s from the first record on.")
    @OptionGroup var target: KafkaTarget
    @Option var records = 500_000

    func run() async throws {
        let bus = try target.bus()
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
