import BrokerClient
import Contracts
import Domain
import EventStore
import Logging
import RPCCore
import ServiceLifecycle
import Synchronization

/// Publishes the event store to the broker: the store is the outbox.
///
/// The relay follows the store by global position, produces each event to its category's topic
/// (keyed by aggregate id, so one aggregate's events stay in order on one partition) through an
/// idempotent producer, and only then records the last published position in the store. So:
/// - commands never wait for the broker: if it is down they are still accepted, and the relay
///   catches up when it returns;
/// - a crash between commit and publish, or between publish and checkpoint, replays from the
///   last checkpoint: nothing is lost. A replay can publish an event twice (a new producer id
///   cannot deduplicate the old one's records); consumers recognise it by its event id
///   (`ce_id`), which the QueryService's per-stream versions do.
///
/// Records follow the CloudEvents Kafka binding in binary mode: the value is the event's JSON
/// and the attributes are `ce_*` headers (`ce_id`, `ce_type`, `ce_subject` = stream id,
/// `ce_time`, plus `ce_position`, `ce_streamversion`, `ce_schemaversion`, `ce_correlationid`,
/// `ce_causationid`).
public final class OutboxRelay: Service, Sendable {
    public struct Options: Sendable {
        /// Events read and published per round.
        public var batchSize = 500
        /// Partitions of the topics the relay creates when they do not exist.
        public var topicPartitions = 3
        /// The checkpoint's name in the store.
        public var checkpointName = "outbox-relay"
        /// Longest pause between attempts while the broker is unreachable.
        public var maxBackoff: Duration = .seconds(2)
        public var producer = BrokerProducer.Options()
        public init() {}
    }

    /// How far the relay has got, for status reports.
    public struct Status: Sendable, Hashable {
        public var publishedPosition: Int64 = 0
        public var brokerConnected = false
        public var lastError: String?

        public init(publishedPosition: Int64 = 0, brokerConnected: Bool = false, lastError: String? = nil) {
            self.publishedPosition = publishedPosition
            self.brokerConnected = brokerConnected
            self.lastError = lastError
        }
    }

    private let store: any EventStore
    private let client: RPCClient
    private let topics: [String: String]
    private let options: Options
    private let logger: Logger
    private let state = Mutex(Status())

    /// `topics` maps stream categories to topic names; other categories publish to a topic named
    /// after the category.
    public init(store: any EventStore, broker client: RPCClient, topics: [String: String], options: Options = Options(), logger: Logger = Logger(label: "relay")) {
        self.store = store
        self.client = client
        self.topics = topics
        self.options = options
        self.logger = logger
    }

    public var status: Status { state.withLock { $0 } }

    public func run() async throws {
        var published = try await store.checkpoint(options.checkpointName) ?? 0
        state.withLock { $0.publishedPosition = published }
        logger.info("relay starting", metadata: ["published-position": "\(published)"])
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let producers = Producers(client: client, options: options, logger: logger)
            // The checkpoint write (an fsync) runs beside the next batch's publishing rather than
            // before it: at most one is in flight, and it never gets ahead of what was published.
            var checkpointing: Task<Void, any Error>?
            defer { checkpointing?.cancel() }
            do {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    let events = try await store.readAll(fromPosition: published + 1, maxCount: options.batchSize)
                    guard !events.isEmpty else {
                        try await checkpointing?.value
                        checkpointing = nil
                        _ = await store.waitForEvents(after: published, timeout: .milliseconds(500))
                        continue
                    }
                    try await publish(events, with: producers)
                    published = events.last!.position
                    try await checkpointing?.value
                    let position = published
                    checkpointing = Task { [store, options] in try await store.saveCheckpoint(options.checkpointName, position: position) }
                    let wasDown = state.withLock { status -> Bool in
                        defer { status = Status(publishedPosition: published, brokerConnected: true, lastError: nil) }
                        return !status.brokerConnected
                    }
                    if wasDown { logger.info("relay publishing", metadata: ["published-position": "\(published)"]) }
                    backoff = .milliseconds(50)
                }
                try await checkpointing?.value
            } catch {
                let firstFailure = state.withLock { status -> Bool in
                    defer {
                        status.brokerConnected = false
                        status.lastError = "\(error)"
                    }
                    return status.lastError == nil
                }
                if firstFailure {
                    logger.warning("relay cannot publish; retrying", metadata: ["error": "\(error)", "published-position": "\(published)"])
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, options.maxBackoff)
            }
        }
        logger.info("relay stopped", metadata: ["published-position": "\(published)"])
    }

    /// Sends a batch in position order and returns once every record is durable in the broker.
    private func publish(_ events: [RecordedEvent], with producers: Producers) async throws {
        var byTopic: [String: [BrokerProducer.OutgoingRecord]] = [:]
        var order: [String] = []
        for event in events {
            let (category, aggregateId) = splitStreamId(event.streamId) ?? (event.streamId, event.streamId)
            let topic = topics[category] ?? category
            if byTopic[topic] == nil { order.append(topic) }
            byTopic[topic, default: []].append(Self.record(for: event, key: aggregateId))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for topic in order {
                let producer = try await producers.producer(for: topic)
                let records = byTopic[topic]!
                group.addTask { _ = try await producer.send(records) }
            }
            try await group.waitForAll()
        }
    }

    static func record(for event: RecordedEvent, key: String) -> BrokerProducer.OutgoingRecord {
        var headers = [
            "ce_specversion": "1.0",
            "ce_id": event.eventId,
            "ce_source": "cqrs.command-service",
            "ce_type": event.type,
            "ce_subject": event.streamId,
            "ce_time": iso8601(milliseconds: event.recordedAt),
            "ce_position": String(event.position),
            "ce_streamversion": String(event.streamVersion),
            "ce_schemaversion": String(event.schemaVersion),
            "content-type": "application/json",
        ]
        if let correlationId = event.correlationId { headers["ce_correlationid"] = correlationId }
        if let causationId = event.causationId { headers["ce_causationid"] = causationId }
        return BrokerProducer.OutgoingRecord(
            key: key, value: RawJSON(unchecked: event.data), headers: headers, timestamp: Int(event.recordedAt))
    }
}

/// One producer per topic for one connected stretch of the relay; a failure discards them all,
/// and the next round starts with new producer ids from the last checkpoint.
private final class Producers: Sendable {
    private let client: RPCClient
    private let options: OutboxRelay.Options
    private let logger: Logger
    private let producers = Mutex<[String: BrokerProducer]>([:])

    init(client: RPCClient, options: OutboxRelay.Options, logger: Logger) {
        self.client = client
        self.options = options
        self.logger = logger
    }

    func producer(for topic: String) async throws -> BrokerProducer {
        if let producer = producers.withLock({ $0[topic] }) { return producer }
        try await ensureTopic(topic)
        let producer = try await BrokerProducer(client: client, topic: topic, options: options.producer, logger: logger)
        producers.withLock { $0[topic] = producer }
        return producer
    }

    private func ensureTopic(_ topic: String) async throws {
        try await TopicAdmin.ensure(
            topic, partitions: options.topicPartitions, client: client, options: CallOptions(timeout: options.producer.requestTimeout), logger: logger)
    }
}
