import ArgumentParser
import BenchSupport
import Contracts
import Foundation
import RPCCore
import RPCHosting
import RPCTransportTCP

typealias BrokerAPI = CqrsBrokerV1

/// broker-bench: load against a running broker, and the physical floor of durable appends on
/// this disk. One JSON line per case on stdout.
struct BrokerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker-bench",
        abstract: "Benchmark the broker (produce, consume, end-to-end) and raw write+fdatasync appends.",
        subcommands: [Produce.self, Consume.self, EndToEnd.self, RawAppend.self])
}

struct Target: ParsableArguments {
    @Option(help: "Broker address, host:port.") var server = "127.0.0.1:9092"
    @Option(help: "Bytes of JSON per record value.") var recordBytes = 200

    func client() throws -> RPCClient { RPCClient(transport: try TCPClientTransport(address: server)) }

    /// A JSON string value of exactly `recordBytes` bytes.
    func value() throws -> RawJSON { try RawJSON(validating: "\"" + String(repeating: "x", count: max(2, recordBytes) - 2) + "\"") }

    func freshTopic(_ api: BrokerAPI.Broker.Client, partitions: Int) async throws -> String {
        let name = "bench-\(UUID().uuidString.prefix(8))"
        _ = try await api.createTopic(.init(name: name, partitions: partitions), options: CallOptions(waitForReady: true))
        return name
    }
}

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Durable produce: records/s, MB/s, ack latency p50/p99.")
    @OptionGroup var target: Target
    @Option var batch = 1
    @Option var producers = 1
    @Option var seconds = 3.0

    func run() async throws {
        let client = try target.client()
        let api = BrokerAPI.Broker.Client(client)
        let topic = try await target.freshTopic(api, partitions: 1)
        let records = Array(repeating: BrokerAPI.ProduceRecord(value: try target.value(), partition: 0), count: batch)
        let request = BrokerAPI.ProduceRequest(topic: topic, records: records)
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        let started = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<producers {
                group.addTask {
                    var mine: [Double] = []
                    while clock.now < end {
                        let t0 = clock.now
                        _ = try await api.produce(request)
                        mine.append((clock.now - t0).seconds * 1000)
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        let elapsed = (clock.now - started).seconds
        let rate = Double(latencies.count * batch) / elapsed
        emit([
            "case": "produce", "batch": batch, "producers": producers, "produces": latencies.count, "records_per_s": rate.rounded(),
            "mb_per_s": (rate * Double(target.recordBytes) / 1e6 * 10).rounded() / 10,
            "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
        ])
        _ = try await api.deleteTopic(.init(name: topic))
    }
}

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read one partition from the start: records/s.")
    @OptionGroup var target: Target
    @Option(help: "Records in the partition (produced first, in batches of 1,000, outside the timing).")
    var records = 500_000
    @Option(help: "Most records per Fetch reply or Subscribe message.")
    var maxRecords = 10_000
    @Option(help: "Times the partition is read from the start; the rate is over all of them.")
    var passes = 1
    @Option(
        help:
            "fetch: one Fetch after another, each waiting for the last (a polling consumer); subscribe: the server-streaming Subscribe, which prepares the next batch while the client reads this one."
    )
    var via = "fetch"

    func run() async throws {
        guard passes >= 1, maxRecords >= 1 else { throw ValidationError("--passes and --max-records are at least 1") }
        let client = try target.client()
        let api = BrokerAPI.Broker.Client(client)
        let topic = try await target.freshTopic(api, partitions: 1)
        let chunk = Array(repeating: BrokerAPI.ProduceRecord(value: try target.value(), partition: 0), count: 1000)
        for _ in 0..<(records / 1000) { _ = try await api.produce(.init(topic: topic, records: chunk)) }
        let clock = ContinuousClock()
        let started = clock.now
        var read = 0
        // Fetch replies or Subscribe messages: what a per-call instruction count divides by.
        var replies = 0
        for _ in 0..<passes {
            switch via {
            case "fetch":
                var offset: Int64 = 0
                var passRead = 0
                while passRead < records {
                    let reply = try await api.fetch(.init(topic: topic, partition: 0, offset: offset, maxRecords: maxRecords, maxBytes: 4 << 20))
                    passRead += reply.records.count
                    replies += 1
                    offset = reply.nextOffset
                }
                read += passRead
            case "subscribe":
                let (passRead, messages) = try await api.subscribe(.init(topic: topic, partition: 0, offset: 0, maxRecords: maxRecords)) { stream in
                    var read = 0
                    var messages = 0
                    for try await reply in stream {
                        read += reply.records.count
                        messages += 1
                        if read >= records { break }
                    }
                    return (read, messages)
                }
                read += passRead
                replies += messages
            default: throw ValidationError("--via is fetch or subscribe")
            }
        }
        emit([
            "case": "consume", "via": via, "records": read, "replies": replies,
            "records_per_s": (Double(read) / (clock.now - started).seconds).rounded(),
        ])
        _ = try await api.deleteTopic(.init(name: topic))
    }
}

struct EndToEnd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Produce -> subscribed consumer latency p50/p99.")
    @OptionGroup var target: Target
    @Option var messages = 2000

    func run() async throws {
        let client = try target.client()
        let api = BrokerAPI.Broker.Client(client)
        let topic = try await target.freshTopic(api, partitions: 1)
        let clock = ContinuousClock()
        let sent = SentTimes(count: messages)
        let value = try target.value()
        let received = Task {
            try await api.subscribe(.init(topic: topic, partition: 0, offset: 0)) { stream in
                var latencies: [Double] = []
                for try await reply in stream {
                    let now = clock.now
                    for record in reply.records { latencies.append((now - sent.at(Int(record.offset))).seconds * 1000) }
                    if latencies.count >= messages { break }
                }
                return latencies.sorted()
            }
        }
        for i in 0..<messages {
            sent.set(i, clock.now)
            _ = try await api.produce(.init(topic: topic, records: [.init(value: value, partition: 0)]))
        }
        let latencies = try await received.value
        emit(["case": "end_to_end", "messages": messages, "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)])
        _ = try await api.deleteTopic(.init(name: topic))
    }
}

/// Send times by offset, written by the producer loop and read by the subscriber.
final class SentTimes: @unchecked Sendable {
    private let lock = NSLock()
    private var times: [ContinuousClock.Instant]

    init(count: Int) { times = Array(repeating: .now, count: count) }
    func set(_ i: Int, _ t: ContinuousClock.Instant) { lock.withLock { times[i] = t } }
    func at(_ i: Int) -> ContinuousClock.Instant { lock.withLock { times[i] } }
}

/// The physical limit: one writer appending batch x record bytes and fdatasync-ing each append,
/// to a file on the same disk as the broker's data.
struct RawAppend: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "raw-append", abstract: "write+fdatasync appends: records/s.")
    @Option var directory = "."
    @Option var batch = 1
    @Option var recordBytes = 200
    @Option var seconds = 3.0

    func run() throws {
        let path = directory + "/raw-append-\(UUID().uuidString).log"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot open \(path)") }
        defer {
            close(fd)
            unlink(path)
        }
        let bytes = [UInt8](repeating: 0x78, count: batch * recordBytes)
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        let started = clock.now
        var appends = 0
        var latencies: [Double] = []
        while clock.now < end {
            let t0 = clock.now
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fdatasync(fd)
            latencies.append((clock.now - t0).seconds * 1000)
            appends += 1
        }
        latencies.sort()
        let rate = Double(appends * batch) / (clock.now - started).seconds
        emit([
            "case": "raw_append", "batch": batch, "records_per_s": rate.rounded(), "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99),
        ])
    }
}

@main
enum Entry {
    static func main() { ConcurrencyOnEventLoops.run { await BrokerBench.main() } }
}
