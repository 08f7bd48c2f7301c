public import EventBus
import Logging
import ReadModels
import ServiceLifecycle
import Synchronization
import TracingSupport
import WallTime

/// Keeps the read models up to date from the event bus: one consumer-group member per event topic,
/// each fetched batch of a partition applied in one transaction with its offsets and stream
/// versions (so a redelivered record or a republished event changes nothing), partitions in
/// parallel. Offsets are committed to the bus afterwards, for lag and monitoring only: on
/// start the consumer resumes from the offsets stored with the models.
public final class Projection: Service, Sendable {
    public struct Options: Sendable {
        /// The consumer group of the QueryService's members.
        public var group = "query-service"
        /// Partitions of a topic created here because it does not exist yet.
        public var topicPartitions = 3
        public var maxRecords = 1000
        public var maxWait: Duration = .milliseconds(500)
        public var maxBackoff: Duration = .seconds(2)
        public init() {}
    }

    public struct Status: Sendable {
        public var brokerConnected = false
        /// The last error joining or consuming, or a partition that cannot be fetched.
        public var lastError: String?
        /// Partitions whose last fetch failed, by "topic/partition".
        var fetchErrors: [String: String] = [:]
    }

    public let topics: [String]
    private let store: ReadModelStore
    private let bus: any EventSubscriber
    private let options: Options
    private let logger: Logger
    private let state = Mutex(Status())
    /// The running consumer of each topic, so `restartMembers` can stop them.
    private let members = Mutex<[String: Task<Void, any Error>]>([:])

    public init(
        store: ReadModelStore, bus: any EventSubscriber, topics: [String], options: Options = Options(), logger: Logger = Logger(label: "projection")
    ) {
        self.store = store
        self.bus = bus
        self.topics = topics
        self.options = options
        self.logger = logger
    }

    public var status: Status {
        state.withLock { status in
            var status = status
            if let (partition, error) = status.fetchErrors.min(by: { $0.key < $1.key }) { status.lastError = "\(partition): \(error)" }
            return status
        }
    }

    /// Keeps each partition's fetch failure until a fetch of it works again, for GetStatus.
    /// OUT_OF_RANGE means the broker no longer has (or never had) the records the read models
    /// need next: its log was trimmed by retention, or it is a new broker. The projection cannot
    /// follow that partition until its stored offset is repaired; status says so rather than
    /// the log alone.
    private func fetched(_ topic: String, _ partition: Int, _ error: (any Error)?) {
        let key = "\(topic)/\(partition)"
        state.withLock { status in
            guard let error else {
                status.fetchErrors[key] = nil
                return
            }
            if let error = error as? OffsetOutOfRange {
                status.fetchErrors[key] =
                    "\(error.message): the broker no longer has the records this partition needs next (trimmed by retention, or a new broker); the read models stop following it"
            } else {
                status.fetchErrors[key] = "\(error)"
            }
        }
    }

    public func run() async throws {
        // A graceful shutdown cancels the members: each commits and leaves its group.
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for topic in self.topics { group.addTask { await self.follow(topic) } }
            }
        }
    }

    /// Consumes one topic until cancelled, joining again after any failure.
    private func follow(_ topic: String) async {
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            var subscribing = SubscriptionOptions()
            subscribing.clientId = "query-service"
            subscribing.maxRecords = options.maxRecords
            subscribing.maxWait = options.maxWait
            subscribing.startOffset = { [store] topic, partition in try await store.nextOffset(topic: topic, partition: partition) }
            subscribing.onFetch = { [weak self] topic, partition, error in self?.fetched(topic, partition, error) }
            let subscription = bus.subscription(group: options.group, topics: [topic], options: subscribing)
            do {
                try await bus.ensureTopic(topic, partitions: options.topicPartitions)
                let member = Task {
                    try await subscription.run { records in
                        guard let first = records.first else { return }
                        // Joins the trace of the batch's first traced record (its publish) and
                        // links every traced record's publish.
                        try await Traced.messaging(
                            "apply \(first.topic)", kind: .consumer, messages: records.count,
                            traceParents: records.compactMap { $0.headers["traceparent"] },
                            attributes: [
                                ("messaging.system", self.bus.messagingSystem), ("messaging.operation.type", "process"),
                                ("messaging.destination.name", first.topic), ("messaging.destination.partition.id", "\(first.partition)"),
                                ("messaging.consumer.group.name", self.options.group),
                            ]
                        ) {
                            _ = try await self.store.apply(topic: first.topic, partition: first.partition, records: records.map(Self.incoming))
                        }
                        self.state.withLock {
                            $0.brokerConnected = true
                            $0.lastError = nil
                        }
                    }
                }
                members.withLock { $0[topic] = member }
                try await withTaskCancellationHandler {
                    try await member.value
                } onCancel: {
                    member.cancel()
                }
                members.withLock { $0[topic] = nil }
                if Task.isCancelled { return }
                // Restarted (`restartMembers`): join again at once, from the stored offsets.
                logger.info("projection member restarted", metadata: ["topic": "\(topic)"])
            } catch {
                if Task.isCancelled { return }
                let first = state.withLock { status -> Bool in
                    defer {
                        status.brokerConnected = false
                        status.lastError = "\(error)"
                    }
                    return status.lastError == nil
                }
                if first { logger.warning("projection cannot consume; retrying", metadata: ["topic": "\(topic)", "error": "\(error)"]) }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, options.maxBackoff)
            }
        }
    }

    /// Stops every topic's member; each joins its group again at once and starts its partitions
    /// from the offsets stored with the models. After a rebuild moved stalled offsets, this is
    /// how the stalled partitions follow again.
    public func restartMembers() {
        let running = members.withLock { Array($0.values) }
        for member in running { member.cancel() }
        state.withLock { $0.fetchErrors = [:] }
    }

    /// The event's time is its `ce_time`; the record's timestamp is the bus's append time on
    /// event topics (LOG_APPEND_TIME), and serves only for a record without `ce_time`.
    static func incoming(_ record: BusRecord) -> IncomingRecord {
        IncomingRecord(
            offset: record.offset, key: record.key, value: record.value, headers: record.headers,
            recordedAt: record.headers["ce_time"].flatMap { milliseconds(iso8601: $0) } ?? record.timestamp)
    }
}
