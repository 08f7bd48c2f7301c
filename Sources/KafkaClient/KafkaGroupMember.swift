import CRdKafka
import Dispatch
import EventBus
import Logging
import Synchronization
import WallTime

/// A subscription on the Kafka bus: each run is one member of a Kafka consumer group.
struct KafkaGroupSubscription: EventSubscription {
    let topics: [String]
    let properties: [KafkaBusLocation.Property]
    let options: SubscriptionOptions
    let timeoutMs: Int32
    let logger: Logger

    func run(_ handler: @escaping @Sendable ([BusRecord]) async throws -> Void) async throws {
        let member = try await KafkaGroupMember.join(topics: topics, properties: properties, options: options, timeoutMs: timeoutMs, logger: logger)
        do {
            try await member.consume(handler)
        } catch {
            await member.leave()
            throw error
        }
        await member.leave()
    }
}

/// One member of a Kafka consumer group (librdkafka's high-level consumer, the classic eager
/// protocol). Every librdkafka call runs on the member's own queue; rebalances are served
/// inside its polls, so they never meet a batch being handled: a batch is polled, handled
/// (its partitions concurrently), committed, and only then is the next poll made.
///
/// Where a granted partition starts: `startOffset` (the offset the application stored with its
/// results), else the group's committed offset, else the log's start. A start outside the log is
/// not reset silently: it reaches `onFetch` as `OffsetOutOfRange` and the partition waits, as on
/// the jframe bus. Commits (after every batch, asynchronously; once more on leaving) are the
/// group's record of progress, for lag.
final class KafkaGroupMember: @unchecked Sendable {
    /// What a member's guarantees rest on.
    static func properties(group: String, options: SubscriptionOptions) -> [(String, String)] {
        [
            ("group.id", group), ("enable.auto.commit", "false"), ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "error"), ("partition.assignment.strategy", "range,roundrobin"),
            // As the jframe consumer: a member that died (a query-service killed) gives its
            // partitions up after 10 s, not librdkafka's 45.
            ("session.timeout.ms", "10000"),
            // A subscribed topic that is gone is reported after 2 s, not librdkafka's 30: the
            // member ends and the application creates the topic again (the projection ensures
            // its topics before joining, so a topic is missing only when the bus lost it).
            ("topic.metadata.propagation.max.ms", "2000"),
            ("fetch.wait.max.ms", "\(max(1, options.maxWait.wholeMilliseconds))"),
        ]
    }

    private let queue = DispatchQueue(label: "kafka.group-member")
    private let handle: KafkaHandle
    private let options: SubscriptionOptions
    private let rebalancing: Rebalancing
    private let logger: Logger
    /// The next offset of each partition handled since the last commit on leaving.
    private let handled = Mutex<[PartitionKey: Int64]>([:])

    struct PartitionKey: Hashable {
        var topic: String
        var partition: Int
    }

    private init(handle: KafkaHandle, options: SubscriptionOptions, rebalancing: Rebalancing, logger: Logger) {
        self.handle = handle
        self.options = options
        self.rebalancing = rebalancing
        self.logger = logger
    }

    static func join(
        topics: [String], properties: [KafkaBusLocation.Property], options: SubscriptionOptions, timeoutMs: Int32, logger: Logger
    ) async throws -> KafkaGroupMember {
        let rebalancing = Rebalancing(topics: topics, startOffset: options.startOffset, timeoutMs: timeoutMs, logger: logger)
        let handle = try KafkaHandle(
            RD_KAFKA_CONSUMER, properties: properties,
            callbacks: HandleCallbacks(
                logger: logger, onRebalance: { handle, event, partitions in rebalancing.rebalance(handle, event, partitions) }))
        let member = KafkaGroupMember(handle: handle, options: options, rebalancing: rebalancing, logger: logger)
        try await member.onQueue {
            // Errors and logs come through the consumer's polls too.
            _ = rd_kafka_poll_set_consumer(handle.pointer)
            let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for topic in topics { _ = rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
            let error = rd_kafka_subscribe(handle.pointer, list)
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, "subscribing to \(topics.joined(separator: ", "))") }
        }
        return member
    }

    private func onQueue<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await queue.perform(body)
    }

    /// Polls and hands over batches until the task is cancelled.
    func consume(_ handler: @escaping @Sendable ([BusRecord]) async throws -> Void) async throws {
        let maxRecords = max(1, options.maxRecords)
        let waitMs = Int32(clamping: max(1, options.maxWait.wholeMilliseconds))
        while !Task.isCancelled {
            let (records, failures) = try await onQueue { self.poll(maxRecords: maxRecords, waitMs: waitMs) }
            if let failure = rebalancing.takeFailure() { throw failure }
            for (key, error) in failures { options.onFetch?(key.topic, key.partition, error) }
            if let gone = failures.values.first(where: { ($0 as? KafkaError)?.isMissingTopic ?? false }) { throw gone }
            guard !records.isEmpty else { continue }
            var batches: [PartitionKey: [BusRecord]] = [:]
            var order: [PartitionKey] = []
            for record in records {
                let key = PartitionKey(topic: record.topic, partition: record.partition)
                if batches[key] == nil { order.append(key) }
                batches[key, default: []].append(record)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for key in order {
                    let batch = batches[key]!
                    group.addTask { try await handler(batch) }
                }
                try await group.waitForAll()
            }
            var next: [PartitionKey: Int64] = [:]
            for key in order {
                options.onFetch?(key.topic, key.partition, nil)
                next[key] = batches[key]!.last!.offset + 1
            }
            handled.withLock { $0.merge(next) { $1 } }
            commit(next, async: true)
        }
    }

    /// One message, waiting up to `waitMs` for it, then whatever else is already fetched, up to
    /// `maxRecords`. Runs on the queue (rebalances are served here).
    private func poll(maxRecords: Int, waitMs: Int32) -> ([BusRecord], [PartitionKey: any Error]) {
        var records: [BusRecord] = []
        var failures: [PartitionKey: any Error] = [:]
        var wait = waitMs
        while records.count < maxRecords, let message = rd_kafka_consumer_poll(handle.pointer, wait) {
            wait = 0
            defer { rd_kafka_message_destroy(message) }
            let error = message.pointee.err
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if error == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                let key = PartitionKey(topic: topic, partition: Int(message.pointee.partition))
                let failure = KafkaError(
                    error, "consuming \(topic)/\(key.partition)", detail: rd_kafka_message_errstr(message).map { String(cString: $0) })
                failures[key] = failure.isOutOfRange ? OffsetOutOfRange(topic: topic, partition: key.partition, message: failure.message) : failure
                logger.warning("the Kafka consumer reports an error", metadata: ["error": "\(failure)"])
                continue
            }
            records.append(BusRecord(message: message))
        }
        return (records, failures)
    }

    private func commit(_ offsets: [PartitionKey: Int64], async: Bool) {
        guard !offsets.isEmpty else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (key, offset) in offsets { rd_kafka_topic_partition_list_add(list, key.topic, Int32(key.partition)).pointee.offset = offset }
        let error = rd_kafka_commit(handle.pointer, list, async ? 1 : 0)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR && error != RD_KAFKA_RESP_ERR__NO_OFFSET {
            logger.debug("commit failed (the group's offsets are for lag only)", metadata: ["error": "\(KafkaError(error))"])
        }
    }

    /// Commits what was handled, leaves the group (giving the partitions back) and destroys the
    /// handle.
    func leave() async {
        let last = handled.withLock { $0 }
        _ = try? await onQueue {
            self.commit(last, async: false)
            _ = rd_kafka_consumer_close(self.handle.pointer)
            self.handle.destroy()
        }
    }
}

/// Assigns what the group grants, each partition from where the application says to start.
///
/// A subscribed topic that went away (a bus that lost its data) ends the member's run, as on the
/// jframe bus: the application creates the topic again and rejoins, from its stored offsets.
/// librdkafka itself only rebalances to nothing, so an assignment without any of a topic's
/// partitions asks whether the topic is still there.
private final class Rebalancing: @unchecked Sendable {
    private let topics: [String]
    private let startOffset: (@Sendable (String, Int) async throws -> Int64?)?
    private let timeoutMs: Int32
    private let logger: Logger
    private let failure = Mutex<(any Error)?>(nil)

    init(topics: [String], startOffset: (@Sendable (String, Int) async throws -> Int64?)?, timeoutMs: Int32, logger: Logger) {
        self.topics = topics
        self.startOffset = startOffset
        self.timeoutMs = timeoutMs
        self.logger = logger
    }

    /// A failure while assigning, for the member to end with.
    func takeFailure() -> (any Error)? {
        failure.withLock { failure in
            defer { failure = nil }
            return failure
        }
    }

    func rebalance(_ handle: OpaquePointer, _ event: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        guard event == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS else {
            logger.info("partitions revoked", metadata: ["partitions": "\(Self.names(partitions))"])
            _ = rd_kafka_assign(handle, nil)
            return
        }
        do {
            let granted = Set((0..<Int(partitions.pointee.cnt)).map { String(cString: partitions.pointee.elems[$0].topic) })
            for topic in topics where !granted.contains(topic) {
                guard try KafkaHandle.partitionIds(of: topic, handle: handle, timeoutMs: timeoutMs, allTopics: true) != nil else {
                    throw KafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "consuming \(topic)", detail: "the topic no longer exists on the bus")
                }
            }
            var fromCommitted: [Int] = []
            for index in 0..<Int(partitions.pointee.cnt) {
                let element = partitions.pointee.elems[index]
                if let start = try storedOffset(String(cString: element.topic), Int(element.partition)) {
                    partitions.pointee.elems[index].offset = start
                } else {
                    fromCommitted.append(index)
                }
            }
            if !fromCommitted.isEmpty {
                let committed = rd_kafka_topic_partition_list_copy(partitions)!
                defer { rd_kafka_topic_partition_list_destroy(committed) }
                let error = rd_kafka_committed(handle, committed, timeoutMs)
                guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, "reading the group's committed offsets") }
                for index in fromCommitted {
                    let offset = committed.pointee.elems[index].offset
                    partitions.pointee.elems[index].offset = offset >= 0 ? offset : Int64(RD_KAFKA_OFFSET_BEGINNING)
                }
            }
            let error = rd_kafka_assign(handle, partitions)
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, "assigning partitions") }
            logger.info("partitions assigned", metadata: ["partitions": "\(Self.names(partitions))"])
        } catch {
            logger.warning("cannot start the granted partitions", metadata: ["error": "\(error)"])
            failure.withLock { $0 = error }
            _ = rd_kafka_assign(handle, nil)
        }
    }

    /// The application's stored offset, asked on a task while this librdkafka thread waits.
    private func storedOffset(_ topic: String, _ partition: Int) throws -> Int64? {
        guard let startOffset else { return nil }
        /// Written before the signal, read after the wait.
        final class Answer: @unchecked Sendable {
            var result: Result<Int64?, any Error> = .success(nil)
        }
        let done = DispatchSemaphore(value: 0)
        let answer = Answer()
        Task {
            do {
                answer.result = .success(try await startOffset(topic, partition))
            } catch {
                answer.result = .failure(error)
            }
            done.signal()
        }
        done.wait()
        return try answer.result.get()
    }

    static func names(_ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> String {
        (0..<Int(partitions.pointee.cnt)).map {
            let element = partitions.pointee.elems[$0]
            return "\(String(cString: element.topic))/\(element.partition)"
        }.joined(separator: " ")
    }
}
