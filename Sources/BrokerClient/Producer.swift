import Contracts
import Logging
import Partitioning
import RPCCore
import Synchronization

public typealias BrokerAPI = CqrsBrokerV1

/// Sends records to one topic in batches: records wait up to `linger` (or until `maxBatchRecords`
/// are waiting) and go together in one Produce call per partition.
///
/// Idempotent by default: the producer takes a producer id and numbers each partition's records,
/// and keeps one request in flight per partition. A request that fails in a way that may have
/// been stored (connection lost, UNAVAILABLE, DEADLINE_EXCEEDED) is retried with the same
/// numbers until `deliveryTimeout`, so it is stored once and order per partition holds.
public final class BrokerProducer: Sendable {
    public struct Options: Sendable {
        public var linger: Duration = .milliseconds(2)
        public var maxBatchRecords = 1000
        public var idempotent = true
        public var deliveryTimeout: Duration = .seconds(30)
        public var requestTimeout: Duration = .seconds(10)
        /// Told of each failed attempt that will be retried (the call itself goes on until it
        /// succeeds or `deliveryTimeout` passes): how a caller's status can say "the broker
        /// refuses" at once rather than only when the call finally fails.
        public var onRetry: (@Sendable (any Error) -> Void)?
        public init() {}
    }

    /// Where a record was stored.
    public struct Position: Hashable, Sendable {
        public var partition: Int
        public var offset: Int64
    }

    /// A record to send, for `send(_:)` of many at once.
    public struct OutgoingRecord: Sendable {
        public var key: String?
        public var value: RawJSON?
        public var headers: [String: String]?
        public var timestamp: Int?
        public var partition: Int?

        public init(key: String?, value: RawJSON?, headers: [String: String]? = nil, timestamp: Int? = nil, partition: Int? = nil) {
            self.key = key
            self.value = value
            self.headers = headers
            self.timestamp = timestamp
            self.partition = partition
        }
    }

    private struct Pending {
        var record: BrokerAPI.ProduceRecord
        var complete: @Sendable (Result<Position, any Error>) -> Void
    }

    private struct PartitionQueue {
        var pending: [Pending] = []
        var sending = false
        var nextSequence: Int32 = 0
    }

    public let topic: String
    public let partitionCount: Int
    private let broker: BrokerAPI.Broker.Client
    private let options: Options
    private let producerId: Int64?
    private let logger: Logger
    private let queues: Mutex<[Int: PartitionQueue]>
    private let sticky = Atomic<Int>(0)

    /// Looks the topic up and, when idempotent, takes a producer id.
    public init(client: RPCClient, topic: String, options: Options = Options(), logger: Logger = Logger(label: "broker.producer")) async throws {
        broker = BrokerAPI.Broker.Client(client)
        self.topic = topic
        self.options = options
        self.logger = logger
        let timeout = CallOptions(timeout: options.requestTimeout, waitForReady: true)
        partitionCount = try await broker.describeTopic(.init(name: topic), options: timeout).partitions.count
        producerId = options.idempotent ? try await broker.initProducer(.init(), options: timeout).producerId : nil
        queues = Mutex([:])
    }

    /// Queues a record and returns once it is durable in the broker. The partition is the
    /// explicit one, else the key's (murmur2, as the broker and Kafka compute it), else one
    /// chosen in turn.
    public func send(
        key: String?, value: RawJSON?, headers: [String: String]? = nil, timestamp: Int? = nil, partition: Int? = nil
    ) async throws -> Position {
        let record = OutgoingRecord(key: key, value: value, headers: headers, timestamp: timestamp, partition: partition)
        return try await withCheckedThrowingContinuation { continuation in
            enqueue([record]) { continuation.resume(with: $1) }
        }
    }

    /// Queues records in their order (so records of one partition are stored in this order) and
    /// returns their positions once all are durable; throws the first failure.
    public func send(_ records: [OutgoingRecord]) async throws -> [Position] {
        guard !records.isEmpty else { return [] }
        let results = Mutex((positions: [Position?](repeating: nil, count: records.count), left: records.count, done: false))
        return try await withCheckedThrowingContinuation { continuation in
            enqueue(records) { index, result in
                let finished = results.withLock { state -> Result<[Position], any Error>? in
                    guard !state.done else { return nil }
                    switch result {
                    case .failure(let error):
                        state.done = true
                        return .failure(error)
                    case .success(let position):
                        state.positions[index] = position
                        state.left -= 1
                        guard state.left == 0 else { return nil }
                        state.done = true
                        return .success(state.positions.map { $0! })
                    }
                }
                if let finished { continuation.resume(with: finished) }
            }
        }
    }

    /// Puts records on their partitions' queues under one lock, in order, and starts a drain for
    /// each queue that was idle. `complete` hears of each record by its index.
    private func enqueue(_ records: [OutgoingRecord], complete: @escaping @Sendable (Int, Result<Position, any Error>) -> Void) {
        let starts = queues.withLock { queues -> [Int] in
            var starts: [Int] = []
            for (index, outgoing) in records.enumerated() {
                let target =
                    outgoing.partition ?? outgoing.key.map { Partitioner.partition(forKey: Array($0.utf8), partitions: partitionCount) }
                    ?? sticky.wrappingAdd(1, ordering: .relaxed).oldValue % partitionCount
                let record = BrokerAPI.ProduceRecord(
                    key: outgoing.key, value: outgoing.value, headers: outgoing.headers, timestamp: outgoing.timestamp, partition: target)
                queues[target, default: PartitionQueue()].pending.append(Pending(record: record) { complete(index, $0) })
                if !queues[target]!.sending {
                    queues[target]!.sending = true
                    starts.append(target)
                }
            }
            return starts
        }
        for target in starts { Task { await self.drain(partition: target) } }
    }

    /// Sends the partition's queue batch after batch until it is empty.
    private func drain(partition: Int) async {
        // A zero linger sends at once (even a zero sleep would suspend through the timer).
        if options.linger > .zero { try? await Task.sleep(for: options.linger) }
        while true {
            let (batch, sequence) = queues.withLock { queues -> ([Pending], Int32) in
                let queue = queues[partition]!
                let count = min(queue.pending.count, options.maxBatchRecords)
                let batch = Array(queue.pending.prefix(count))
                queues[partition]!.pending.removeFirst(count)
                if batch.isEmpty { queues[partition]!.sending = false }
                return (batch, queue.nextSequence)
            }
            guard !batch.isEmpty else { return }
            do {
                let results = try await sendWithRetries(batch.map(\.record), partition: partition, sequence: sequence)
                queues.withLock { $0[partition]!.nextSequence = sequence &+ Int32(batch.count) }
                for (pending, result) in zip(batch, results) {
                    pending.complete(.success(Position(partition: result.partition, offset: result.offset)))
                }
            } catch {
                for pending in batch { pending.complete(.failure(error)) }
            }
        }
    }

    private func sendWithRetries(
        _ records: [BrokerAPI.ProduceRecord], partition: Int, sequence: Int32
    ) async throws -> [BrokerAPI.RecordPosition] {
        let request = BrokerAPI.ProduceRequest(
            topic: topic, records: records, producerId: producerId,
            sequences: producerId == nil ? nil : [BrokerAPI.PartitionSequence(partition: partition, baseSequence: Int(sequence))])
        let giveUp = ContinuousClock.now + options.deliveryTimeout
        var backoff = Duration.milliseconds(20)
        while true {
            do {
                return try await broker.produce(request, options: CallOptions(timeout: options.requestTimeout)).results
            } catch let error as RPCError where Self.mayRetry(error.code) && producerId != nil && ContinuousClock.now + backoff < giveUp {
                logger.debug("retrying a produce", metadata: ["partition": "\(partition)", "error": "\(error)"])
                options.onRetry?(error)
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }

    /// Failures after which the records may or may not be stored: safe to retry only with
    /// idempotence, which is why a plain producer does not.
    static func mayRetry(_ code: StatusCode) -> Bool {
        code == .unavailable || code == .deadlineExceeded || code == .cancelled || code == .unknown
    }
}
