import CRdKafka
import Dispatch
public import EventBus
public import Logging
import WallTime

/// The event bus on any Kafka-compatible cluster, over librdkafka: producer sessions are
/// idempotent producers (acks=all, ordered per partition, keys routed by murmur2 as Java clients
/// and our broker route them), subscriptions are members of a Kafka consumer group that hand
/// over per-partition batches and commit after each (for lag; the read models keep their own
/// offsets), and topics are created with `message.timestamp.type=LogAppendTime`, as the jframe
/// bus creates them.
///
/// librdkafka calls block; the bus runs them on its own threads, never on the caller's.
public final class KafkaEventBus: EventPublisher, EventSubscriber {
    public struct Options: Sendable {
        /// Each metadata, offsets or admin request, and each read of a topic's records.
        public var requestTimeout: Duration = .seconds(10)
        /// Names this client to the cluster (`client.id`).
        public var clientId = "cqrs"
        public init() {}
    }

    public let location: KafkaBusLocation
    let options: Options
    let logger: Logger
    /// Metadata, offsets, topic creation and `read`, one at a time, on the tools handle (a
    /// consumer outside any group, made when first needed).
    private let tools: ToolsHandle

    public init(location: KafkaBusLocation, options: Options = Options(), logger: Logger = Logger(label: "kafka.bus")) {
        self.location = location
        self.options = options
        self.logger = logger
        tools = ToolsHandle(properties: Self.properties(location, clientId: options.clientId, role: []), logger: logger)
    }

    /// Destroys the tools handle (producer sessions and subscriptions close themselves).
    public func close() {
        tools.close()
    }

    public var messagingSystem: String { "kafka" }

    var timeoutMs: Int32 { Int32(clamping: options.requestTimeout.wholeMilliseconds) }

    /// The bus's defaults, then the role's (producer, consumer), then what the location says.
    static func properties(_ location: KafkaBusLocation, clientId: String, role: [(String, String)]) -> [KafkaBusLocation.Property] {
        let common: [(String, String)] = [
            ("bootstrap.servers", location.bootstrapServers.joined(separator: ",")), ("client.id", clientId),
            // As the jframe clients: a broker that comes back is found within a second.
            ("reconnect.backoff.max.ms", "1000"),
        ]
        return (common + role).map { KafkaBusLocation.Property(name: $0.0, value: $0.1) } + location.properties
    }

    // MARK: EventTopics

    public func ensureTopic(_ topic: String, partitions: Int) async throws {
        precondition(partitions > 0, "a topic needs a partition")
        let timeoutMs = timeoutMs
        try await tools.run { handle in
            if try handle.partitions(of: topic, timeoutMs: timeoutMs) != nil { return }
            if try Self.createTopic(topic, partitions: partitions, handle: handle, timeoutMs: timeoutMs) {
                self.logger.info("created topic", metadata: ["topic": "\(topic)", "partitions": "\(partitions)"])
            }
        }
    }

    /// CreateTopics with the event-topic configuration and the cluster's default replication;
    /// false when another client created it first.
    static func createTopic(_ topic: String, partitions: Int, handle: KafkaHandle, timeoutMs: Int32) throws -> Bool {
        var problem = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(topic, Int32(partitions), -1, &problem, problem.count) else {
            throw KafkaError.invalidConfiguration(KafkaHandle.text(problem))
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        // Retention counts from when the bus got an event (see TopicAdmin.eventTopicConfig).
        _ = rd_kafka_NewTopic_set_config(newTopic, "message.timestamp.type", "LogAppendTime")
        let replies = rd_kafka_queue_new(handle.pointer)
        defer { rd_kafka_queue_destroy(replies) }
        let adminOptions = rd_kafka_AdminOptions_new(handle.pointer, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(adminOptions) }
        _ = rd_kafka_AdminOptions_set_request_timeout(adminOptions, timeoutMs, &problem, problem.count)
        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(handle.pointer, &topics, 1, adminOptions, replies)
        guard let event = rd_kafka_queue_poll(replies, timeoutMs + 1000) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, "creating topic \(topic)")
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(eventError, "creating topic \(topic)", detail: rd_kafka_event_error_string(event).map { String(cString: $0) })
        }
        var count = 0
        guard let result = rd_kafka_event_CreateTopics_result(event), let results = rd_kafka_CreateTopics_result_topics(result, &count), count > 0
        else { throw KafkaError(RD_KAFKA_RESP_ERR__BAD_MSG, "creating topic \(topic): no result") }
        let error = rd_kafka_topic_result_error(results[0])
        if error == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { return false }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(error, "creating topic \(topic)", detail: rd_kafka_topic_result_error_string(results[0]).map { String(cString: $0) })
        }
        return true
    }

    public func partitions(of topic: String) async throws -> [PartitionBounds]? {
        let timeoutMs = timeoutMs
        return try await tools.run { try $0.partitions(of: topic, timeoutMs: timeoutMs) }
    }

    public func read(_ topic: String, partition: Int, from offset: Int64, maxRecords: Int) async throws -> [BusRecord] {
        let timeoutMs = timeoutMs
        return try await tools.run {
            try Self.read(topic, partition: partition, from: offset, maxRecords: maxRecords, handle: $0, timeoutMs: timeoutMs)
        }
    }

    /// Reads with librdkafka's simple (group-less) consumer: the partition's bounds first, so an
    /// offset outside them is `OffsetOutOfRange` at once and the read knows where the log ends.
    static func read(
        _ topic: String, partition: Int, from offset: Int64, maxRecords: Int, handle: KafkaHandle, timeoutMs: Int32
    ) throws -> [BusRecord] {
        let (low, high) = try handle.watermarks(topic, partition: partition, timeoutMs: timeoutMs)
        guard offset >= low, offset <= high else {
            throw OffsetOutOfRange(
                topic: topic, partition: partition, message: "offset \(offset) is out of range in \(topic)/\(partition) (\(low) to \(high))")
        }
        guard offset < high, maxRecords > 0 else { return [] }
        guard let topicHandle = rd_kafka_topic_new(handle.pointer, topic, nil) else { throw KafkaError(rd_kafka_last_error(), "topic \(topic)") }
        defer { rd_kafka_topic_destroy(topicHandle) }
        guard rd_kafka_consume_start(topicHandle, Int32(partition), offset) == 0 else {
            throw KafkaError(rd_kafka_last_error(), "reading \(topic)/\(partition) from \(offset)")
        }
        defer { rd_kafka_consume_stop(topicHandle, Int32(partition)) }
        var records: [BusRecord] = []
        let wanted = Int(min(Int64(maxRecords), high - offset))
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMs))
        while records.count < wanted, (records.last?.offset ?? offset - 1) < high - 1 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            guard let message = rd_kafka_consume(topicHandle, Int32(partition), Int32(clamping: max(1, left.wholeMilliseconds))) else { continue }
            defer { rd_kafka_message_destroy(message) }
            let error = message.pointee.err
            if error == RD_KAFKA_RESP_ERR__PARTITION_EOF { break }
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let failure = KafkaError(
                    error, "reading \(topic)/\(partition) from \(offset)", detail: rd_kafka_message_errstr(message).map { String(cString: $0) })
                if failure.isOutOfRange { throw OffsetOutOfRange(topic: topic, partition: partition, message: failure.message) }
                throw failure
            }
            guard message.pointee.offset >= offset else { continue }
            records.append(BusRecord(message: message))
        }
        if records.isEmpty {
            throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, "reading \(topic)/\(partition) from \(offset) (the log ends at \(high))")
        }
        return records
    }

    // MARK: EventPublisher

    public func producer(for topic: String, onRetry: (@Sendable (any Error) -> Void)?) async throws -> any TopicProducer {
        try KafkaProducerSession(
            topic: topic, properties: Self.properties(location, clientId: options.clientId, role: KafkaProducerSession.properties), onRetry: onRetry,
            logger: logger)
    }

    // MARK: EventSubscriber

    public func subscription(group: String, topics: [String], options: SubscriptionOptions) -> any EventSubscription {
        var role = KafkaGroupMember.properties(group: group, options: options)
        if let clientId = options.clientId { role.append(("client.id", clientId)) }
        return KafkaGroupSubscription(
            topics: topics, properties: Self.properties(location, clientId: self.options.clientId, role: role), options: options,
            timeoutMs: timeoutMs, logger: logger)
    }
}

/// The bus's consumer outside any group, for metadata, offsets, admin requests and reads: made
/// when first needed, used by one call at a time on its own queue.
private final class ToolsHandle: @unchecked Sendable {
    private let queue = DispatchQueue(label: "kafka.bus.tools")
    private let properties: [KafkaBusLocation.Property]
    private let logger: Logger
    /// Touched only on `queue`.
    private var handle: KafkaHandle?
    private var closed = false

    init(properties: [KafkaBusLocation.Property], logger: Logger) {
        self.properties =
            properties + [
                // Reads stop at the end of the log, and never skip to a reset position.
                KafkaBusLocation.Property(name: "enable.partition.eof", value: "true"),
                KafkaBusLocation.Property(name: "auto.offset.reset", value: "error"),
            ]
        self.logger = logger
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (KafkaHandle) throws -> T) async throws -> T {
        try await queue.perform {
            guard !self.closed else { throw KafkaError(RD_KAFKA_RESP_ERR__DESTROY, "the bus is closed") }
            if self.handle == nil {
                self.handle = try KafkaHandle(RD_KAFKA_CONSUMER, properties: self.properties, callbacks: HandleCallbacks(logger: self.logger))
            }
            return try body(self.handle!)
        }
    }

    func close() {
        queue.sync {
            closed = true
            handle?.destroy()
            handle = nil
        }
    }
}
