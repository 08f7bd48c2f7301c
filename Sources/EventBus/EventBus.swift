/// The seam between the services and whatever carries their events: the relay publishes through
/// `EventPublisher`, the projection consumes through `EventSubscriber`.
///
/// The model is Kafka's, so any Kafka-compatible bus fits behind it: topics of partitions,
/// records with a key, a value, headers and an offset, order kept per partition, at-least-once
/// delivery, and offsets that a consumer may keep itself (beside its results, for exactly once
/// in effect). Implementations: `BrokerEventBus` (BrokerClient: our broker over jframe),
/// `KafkaEventBus` (KafkaClient: any Kafka-compatible cluster, over librdkafka) and
/// `InMemoryEventBus` (one process: tests, and embedding without a broker).
///
/// What both sides need of a topic.
public protocol EventTopics: Sendable {
    /// What carries the records, as OpenTelemetry's `messaging.system` names it (`kafka`), or
    /// this project's name for its own broker (`jframe`): the publish and apply spans say it.
    var messagingSystem: String { get }
    /// Creates `topic` with `partitions` when it does not exist, configured as an event topic
    /// (records take the bus's append time); an existing topic is left as it is.
    func ensureTopic(_ topic: String, partitions: Int) async throws
    /// The topic's partitions and their bounds; nil when the topic does not exist.
    func partitions(of topic: String) async throws -> [PartitionBounds]?
    /// Up to `maxRecords` records of one partition from `offset` on, in offset order, without
    /// waiting for more (empty at the end of the log).
    func read(_ topic: String, partition: Int, from offset: Int64, maxRecords: Int) async throws -> [BusRecord]
}

/// Publishes records durably and exactly once per producer session.
public protocol EventPublisher: EventTopics {
    /// A new producer session for `topic`. Its sends are idempotent: a send retried after a lost
    /// reply stores each record once, and records of one partition are stored in the order sent.
    /// `onRetry` hears of each failed attempt the session will retry by itself. A new session
    /// cannot recognise records an earlier one stored: a publisher that replays after a crash
    /// reads the topic's tail first (see `read`).
    func producer(for topic: String, onRetry: (@Sendable (any Error) -> Void)?) async throws -> any TopicProducer
}

/// One producer session on one topic.
public protocol TopicProducer: Sendable {
    /// Sends records in order and returns once every one is durable on the bus; throws the first
    /// failure (after the session's own retries).
    func send(_ records: [OutgoingRecord]) async throws
}

/// Consumes topics as a member of a consumer group.
public protocol EventSubscriber: EventTopics {
    /// A member of `group` consuming `topics`; it joins when run.
    func subscription(group: String, topics: [String], options: SubscriptionOptions) -> any EventSubscription
}

/// How a subscription starts and reports.
public struct SubscriptionOptions: Sendable {
    /// Names the member in the group's description.
    public var clientId: String?
    /// Most records handed over at once.
    public var maxRecords = 500
    /// Longest wait for records at the end of a partition before asking again.
    public var maxWait: Duration = .milliseconds(500)
    /// Where to start in a newly granted partition when the application keeps its offsets itself
    /// (nil: the group's committed offset, else the partition's start).
    public var startOffset: (@Sendable (_ topic: String, _ partition: Int) async throws -> Int64?)?
    /// Told after every read of a partition: nil when it worked, else why it failed (the member
    /// retries with backoff either way).
    public var onFetch: (@Sendable (_ topic: String, _ partition: Int, _ error: (any Error)?) -> Void)?

    public init() {}
}

/// A group member: delivers the records of the partitions it is granted, per partition in
/// offset order (partitions concurrently), and commits what was handled.
public protocol EventSubscription: Sendable {
    /// Joins the group and hands over each batch of one partition's records (all of one topic
    /// and partition, in offset order) until the task is cancelled; a batch counts as handled,
    /// and its offsets are committed, once the handler returns. Then commits and leaves the group.
    func run(_ handler: @escaping @Sendable (_ records: [BusRecord]) async throws -> Void) async throws
}

extension EventTopics {
    /// Every record of `topic`, partition by partition, each in offset order; empty when the
    /// topic does not exist. Reads the whole topic into memory: for tools and tests.
    public func allRecords(of topic: String, pageSize: Int = 1000) async throws -> [BusRecord] {
        var all: [BusRecord] = []
        for partition in try await partitions(of: topic) ?? [] {
            var offset = partition.logStartOffset
            while offset < partition.highWatermark {
                let page = try await read(topic, partition: partition.partition, from: offset, maxRecords: pageSize)
                guard let last = page.last else { break }
                all += page
                offset = last.offset + 1
            }
        }
        return all
    }
}
