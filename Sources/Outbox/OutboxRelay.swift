import Checksums
public import Crypto
import Domain
public import EventBus
public import EventStore
import Logging
import ServiceLifecycle
import Synchronization
import TracingSupport
import WallTime

/// Publishes the event store to the bus: the store is the outbox.
///
/// The relay follows the store by global position, produces each event to its category's topic
/// (keyed by aggregate id, so one aggregate's events stay in order on one partition) through an
/// idempotent producer, and only then records the last published position in the store. So:
/// - commands never wait for the broker: if it is down they are still accepted, and the relay
///   catches up when it returns;
/// - a crash between commit and publish, or between publish and checkpoint, replays from the
///   last checkpoint: nothing is lost. Nor is anything published twice: a replay first reads the
///   tail of each topic it publishes to and skips the events already there (by `ce_id`), which a
///   new producer id could not recognise by itself. Every stored event reaches the broker once.
///
/// Records follow the CloudEvents Kafka binding in binary mode: the value is the event's JSON
/// and the attributes are `ce_*` headers (`ce_id`, `ce_type`, `ce_subject` = stream id,
/// `ce_time`, plus `ce_position`, `ce_streamversion`, `ce_schemaversion`, `ce_correlationid`,
/// `ce_causationid`), `traceparent` for an event appended in a recorded trace (W3C Trace
/// Context: the relay's `publish <topic>` span, child of the command's), and `cqrs_signature`:
/// an HMAC-SHA256, with a key only the command-service holds, of the event's position, id,
/// stream and version. The relay trusts a topic's records as
/// its own (to skip them on a replay, and to compare them with the store: see `check`) only when
/// their signature verifies, so a record anyone else produced can neither hide a real event nor
/// pass for evidence that the store lost one.
public final class OutboxRelay: Service, Sendable {
    public struct Options: Sendable {
        /// Events read and published per round.
        public var batchSize = 500
        /// Partitions of the topics the relay creates when they do not exist.
        public var topicPartitions = 3
        /// The checkpoint's name in the store.
        public var checkpointName = "outbox-relay"
        /// Longest pause between attempts while the bus is unreachable.
        public var maxBackoff: Duration = .seconds(2)
        /// Signs each record (`cqrs_signature`); nil: records are unsigned and every record in a
        /// topic is taken as the relay's own (tests, and brokers only the relay can write).
        public var signingKey: SymmetricKey?
        public init() {}
    }

    /// How far the relay has got, for status reports.
    public struct Status: Sendable, Hashable {
        public var publishedPosition: Int64 = 0
        public var brokerConnected = false
        public var lastError: String?
        /// Another replica holds the relay's lease and publishes; this one waits to take over.
        public var standingBy = false

        public init(publishedPosition: Int64 = 0, brokerConnected: Bool = false, lastError: String? = nil, standingBy: Bool = false) {
            self.publishedPosition = publishedPosition
            self.brokerConnected = brokerConnected
            self.lastError = lastError
            self.standingBy = standingBy
        }
    }

    /// The store's roles the relay uses: it follows `$all`, keeps its checkpoint, and shuts
    /// appends when the bus proves the store lost events.
    public typealias Store = AllStreamReader & CheckpointStore & EventAppender

    private let store: any Store
    private let bus: any EventPublisher
    private let topics: [String: String]
    private let options: Options
    private let logger: Logger
    private let state = Mutex(Status())

    /// `topics` maps stream categories to topic names; other categories publish to a topic named
    /// after the category.
    public init(
        store: any Store, bus: any EventPublisher, topics: [String: String], options: Options = Options(), logger: Logger = Logger(label: "relay")
    ) {
        self.store = store
        self.bus = bus
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
            let producers = Producers(
                bus: bus, options: options, replayingAfter: published, logger: logger,
                onRetry: { [weak self] error in self?.noteRefused(error) },
                checkAgainstStore: { [store] published in try await Self.check(published, against: store) })
            // The checkpoint write (an fsync) runs beside the next batch's publishing rather than
            // before it: at most one is in flight, and it never gets ahead of what was published.
            var checkpointing: Task<Void, any Error>?
            defer { checkpointing?.cancel() }
            do {
                // Every event topic's tail is compared with the store at the start of a stretch,
                // before anything new is published: a store that lost events the broker holds
                // must not hand their positions out again.
                for topic in Set(topics.values).sorted() { _ = try await producers.producer(for: topic) }
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
            } catch EventStoreError.dataLoss(let reason) {
                // Publishing on would spread the damage: the relay stops until an operator repairs
                // the store (the status and the critical log line say why).
                store.refuseWrites(because: reason)
                state.withLock { $0.lastError = "the relay stopped: \(reason)" }
                logger.critical("the relay stopped: the event store is damaged", metadata: ["reason": "\(reason)"])
                while !Task.isCancelled && !Task.isShuttingDownGracefully { try? await Task.sleep(for: .seconds(1)) }
                break
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

    /// Compares the records a topic holds after the checkpoint (position: event id) with the
    /// store: each must be the store's event at that position. One that is not, or that lies
    /// beyond the store's head, means the store lost events it had acknowledged and published
    /// (a damaged or restored-from-old-backup file): `dataLoss`.
    static func check(_ published: [Int64: String], against store: any AllStreamReader) async throws {
        guard let highest = published.keys.max() else { return }
        let head = try await store.headPosition()
        if highest > head {
            throw EventStoreError.dataLoss(
                "the broker holds event \(published[highest]!) at position \(highest), but the store's last event is at position \(head): the store lost events it had stored and published; restore it, or see Sources/CommandService/README.md, 'Damaged files'"
            )
        }
        var position = published.keys.min()!
        while position <= highest {
            let events = try await store.readAll(fromPosition: position, maxCount: 1000)
            guard let last = events.last else { break }
            for event in events where published[event.position].map({ $0 != event.eventId }) ?? false {
                throw EventStoreError.dataLoss(
                    "the broker holds event \(published[event.position]!) at position \(event.position), where the store holds event \(event.eventId): the store lost events and handed their positions out again; see Sources/CommandService/README.md, 'Damaged files'"
                )
            }
            position = last.position + 1
        }
    }

    /// A produce failed and is being retried: the status says so now, not when the retries end
    /// (up to the producer's delivery timeout later). The next published batch clears it.
    private func noteRefused(_ error: any Error) {
        let first = state.withLock { status -> Bool in
            defer {
                status.brokerConnected = false
                status.lastError = "publishing is being retried: \(error)"
            }
            return status.brokerConnected
        }
        if first { logger.warning("the broker refuses the relay's records; retrying", metadata: ["error": "\(error)"]) }
    }

    /// Sends a batch in position order and returns once every record is durable on the bus.
    private func publish(_ events: [RecordedEvent], with producers: Producers) async throws {
        var byTopic: [String: [RecordedEvent]] = [:]
        var order: [String] = []
        for event in events {
            let topic = Self.topic(of: event, topics: topics)
            if byTopic[topic] == nil { order.append(topic) }
            byTopic[topic, default: []].append(event)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for topic in order {
                let (producer, alreadyThere) = try await producers.producer(for: topic)
                let pending = byTopic[topic]!.filter { !alreadyThere.contains($0.eventId) }
                if pending.count < byTopic[topic]!.count {
                    logger.info(
                        "relay skipped events an earlier run published before its checkpoint",
                        metadata: ["topic": "\(topic)", "skipped": "\(byTopic[topic]!.count - pending.count)"])
                }
                guard !pending.isEmpty else { continue }
                let signingKey = options.signingKey
                group.addTask {
                    // The publish joins the trace of the batch's first traced event and links
                    // the others; each traced event's record carries the publish's context on.
                    try await Traced.messaging(
                        "publish \(topic)", kind: .producer, messages: pending.count, traceParents: pending.compactMap(\.traceParent),
                        attributes: [
                            ("messaging.system", producers.messagingSystem), ("messaging.operation.type", "send"),
                            ("messaging.destination.name", topic),
                        ]
                    ) {
                        let publishing = Traced.currentTraceParent
                        let records = pending.map { event in
                            Self.record(
                                for: event, key: splitStreamId(event.streamId)?.aggregateId ?? event.streamId, signingKey: signingKey,
                                traceParent: event.traceParent == nil ? nil : publishing)
                        }
                        try await producer.send(records)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static let signatureHeader = "cqrs_signature"

    /// HMAC-SHA256 of the event's identity, hex.
    static func signature(position: Int64, eventId: String, streamId: String, streamVersion: Int64, key: SymmetricKey) -> String {
        let message = Array("\(position)\n\(eventId)\n\(streamVersion)\n\(streamId)".utf8)
        return HMAC<SHA256>.authenticationCode(for: message, using: key).withUnsafeBytes { Hex.string($0) }
    }

    /// Whether a fetched record is one this relay wrote: its signature verifies (always true
    /// without a key).
    static func isOwn(_ headers: [String: String]?, position: Int64, eventId: String, key: SymmetricKey?) -> Bool {
        guard let key else { return true }
        guard let headers, let given = headers[signatureHeader], let streamId = headers["ce_subject"],
            let version = headers["ce_streamversion"].flatMap(Int64.init)
        else { return false }
        let expected = signature(position: position, eventId: eventId, streamId: streamId, streamVersion: version, key: key)
        // Constant time: a forger learns nothing from how long the comparison took.
        return given.utf8.count == expected.utf8.count && zip(given.utf8, expected.utf8).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static func topic(of event: RecordedEvent, topics: [String: String]) -> String {
        let category = splitStreamId(event.streamId)?.category ?? event.streamId
        return topics[category] ?? category
    }

    /// The event as a record, in its type's current shape (`inCurrentShape`); `traceParent` (the
    /// publish's span context) goes out as the W3C `traceparent` header, which the read models'
    /// apply continues.
    static func record(for stored: RecordedEvent, key: String, signingKey: SymmetricKey? = nil, traceParent: String? = nil) -> OutgoingRecord {
        let event = stored.inCurrentShape()
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
        if let traceParent { headers["traceparent"] = traceParent }
        if let signingKey {
            headers[Self.signatureHeader] = signature(
                position: event.position, eventId: event.eventId, streamId: event.streamId, streamVersion: event.streamVersion, key: signingKey)
        }
        return OutgoingRecord(key: key, value: event.data, headers: headers, timestamp: event.recordedAt)
    }
}

/// One producer session per topic for one connected stretch of the relay; a failure discards
/// them all, and the next round starts new sessions from the last checkpoint. Before a topic's
/// first record in a stretch, it reads which events after that checkpoint the topic already holds.
private final class Producers: Sendable {
    private let bus: any EventPublisher
    private let options: OutboxRelay.Options
    private let replayingAfter: Int64
    private let logger: Logger
    private let onRetry: @Sendable (any Error) -> Void
    private let checkAgainstStore: @Sendable ([Int64: String]) async throws -> Void
    private let producers = Mutex<[String: (any TopicProducer, Set<String>)]>([:])

    init(
        bus: any EventPublisher, options: OutboxRelay.Options, replayingAfter: Int64, logger: Logger,
        onRetry: @escaping @Sendable (any Error) -> Void, checkAgainstStore: @escaping @Sendable ([Int64: String]) async throws -> Void
    ) {
        self.bus = bus
        self.options = options
        self.replayingAfter = replayingAfter
        self.logger = logger
        self.onRetry = onRetry
        self.checkAgainstStore = checkAgainstStore
    }

    /// What carries the records, for the publish span.
    var messagingSystem: String { bus.messagingSystem }

    /// The topic's producer, and the ids of events after the checkpoint it already holds.
    func producer(for topic: String) async throws -> (any TopicProducer, Set<String>) {
        if let producer = producers.withLock({ $0[topic] }) { return producer }
        try await bus.ensureTopic(topic, partitions: options.topicPartitions)
        let published = try await publishedEvents(topic)
        try await checkAgainstStore(published)
        let alreadyThere = Set(published.values)
        let producer = try await bus.producer(for: topic, onRetry: onRetry)
        producers.withLock { $0[topic] = (producer, alreadyThere) }
        return (producer, alreadyThere)
    }

    /// The `ce_position` and `ce_id` of every record in `topic` whose position is after the
    /// checkpoint. Such records are at the tail of each partition: the relay publishes in
    /// position order and at most two batches run ahead of the checkpoint, so it reads back a
    /// window of that size, widened until it reaches a record at or before the checkpoint (or
    /// the log's start).
    private func publishedEvents(_ topic: String) async throws -> [Int64: String] {
        var ids: [Int64: String] = [:]
        var foreign = 0
        for partition in try await bus.partitions(of: topic) ?? [] where partition.highWatermark > partition.logStartOffset {
            var window = Int64(2 * options.batchSize + 64)
            while true {
                let from = max(partition.logStartOffset, partition.highWatermark - window)
                var offset = from
                var reachedCheckpoint = from == partition.logStartOffset
                while offset < partition.highWatermark {
                    let page = try await bus.read(topic, partition: partition.partition, from: offset, maxRecords: 1000)
                    guard let last = page.last else { break }
                    for record in page {
                        guard let position = record.headers["ce_position"].flatMap(Int64.init) else { continue }
                        if position > replayingAfter, let id = record.headers["ce_id"] {
                            if OutboxRelay.isOwn(record.headers, position: position, eventId: id, key: options.signingKey) {
                                ids[position] = id
                            } else {
                                foreign += 1
                            }
                        } else if position <= replayingAfter {
                            reachedCheckpoint = true
                        }
                    }
                    offset = last.offset + 1
                }
                if reachedCheckpoint { break }
                window *= 2
            }
        }
        if foreign > 0 {
            logger.warning(
                "records in an event topic claim positions after the relay's checkpoint without the relay's signature: someone else produced them; ignored",
                metadata: ["topic": "\(topic)", "records": "\(foreign)"])
        }
        if !ids.isEmpty {
            logger.info("relay found events published after its checkpoint", metadata: ["topic": "\(topic)", "events": "\(ids.count)"])
        }
        return ids
    }
}
