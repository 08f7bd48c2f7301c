import Contracts
public import EventBus
import Logging
import RPCCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The event bus on our broker, over jframe: producer sessions are idempotent `BrokerProducer`s,
/// subscriptions are `GroupConsumer`s, topics are created with the event-topic configuration.
///
/// Record values travel as JSON in the broker's protocol: what is published here must be JSON
/// (events are, checked when they were appended to the store).
public final class BrokerEventBus: EventPublisher, EventSubscriber {
    public struct Options: Sendable {
        /// Each call to the broker that is not a long poll.
        public var requestTimeout: Duration = .seconds(10)
        /// Producer sessions. The relay batches already, so the default sends at once instead of
        /// lingering for more records.
        public var producer: BrokerProducer.Options = {
            var options = BrokerProducer.Options()
            options.linger = .zero
            return options
        }()
        public init() {}
    }

    private let client: RPCClient
    private let broker: BrokerAPI.Broker.Client
    private let options: Options
    private let logger: Logger

    public init(client: RPCClient, options: Options = Options(), logger: Logger = Logger(label: "broker.bus")) {
        self.client = client
        broker = BrokerAPI.Broker.Client(client)
        self.options = options
        self.logger = logger
    }

    private var callOptions: CallOptions { CallOptions(timeout: options.requestTimeout) }

    public var messagingSystem: String { "jframe" }

    public func ensureTopic(_ topic: String, partitions: Int) async throws {
        try await TopicAdmin.ensure(
            topic, partitions: partitions, config: TopicAdmin.eventTopicConfig, client: client, options: callOptions, logger: logger)
    }

    public func partitions(of topic: String) async throws -> [PartitionBounds]? {
        do {
            return try await broker.describeTopic(.init(name: topic), options: callOptions).partitions.map {
                PartitionBounds(partition: $0.partition, logStartOffset: $0.logStartOffset, highWatermark: $0.highWatermark)
            }
        } catch let error as RPCError where error.code == .notFound {
            return nil
        }
    }

    public func read(_ topic: String, partition: Int, from offset: Int64, maxRecords: Int) async throws -> [BusRecord] {
        do {
            let page = try await broker.fetch(.init(topic: topic, partition: partition, offset: offset, maxRecords: maxRecords), options: callOptions)
            return page.records.map { Self.busRecord($0, topic: topic) }
        } catch {
            throw Self.translated(error, topic: topic, partition: partition)
        }
    }

    /// The broker's OUT_OF_RANGE as the bus's `OffsetOutOfRange`; other errors as they are.
    static func translated(_ error: any Error, topic: String, partition: Int) -> any Error {
        guard let error = error as? RPCError, error.code == .outOfRange else { return error }
        return OffsetOutOfRange(topic: topic, partition: partition, message: error.message)
    }

    public func producer(for topic: String, onRetry: (@Sendable (any Error) -> Void)?) async throws -> any TopicProducer {
        var producing = options.producer
        producing.requestTimeout = options.requestTimeout
        producing.onRetry = onRetry
        return ProducerSession(producer: try await BrokerProducer(client: client, topic: topic, options: producing, logger: logger))
    }

    public func subscription(group: String, topics: [String], options: SubscriptionOptions) -> any EventSubscription {
        var consuming = GroupConsumer.Options()
        consuming.clientId = options.clientId
        consuming.maxRecords = options.maxRecords
        consuming.maxWait = options.maxWait
        consuming.startOffset = options.startOffset
        if let onFetch = options.onFetch {
            consuming.onFetch = { topic, partition, error in
                onFetch(topic, partition, error.map { Self.translated($0, topic: topic, partition: partition) })
            }
        }
        return Subscription(consumer: GroupConsumer(client: client, group: group, topics: topics, options: consuming, logger: logger))
    }

    static func busRecord(_ record: BrokerAPI.ConsumedRecord, topic: String) -> BusRecord {
        BusRecord(
            topic: topic, partition: record.partition, offset: record.offset, timestamp: Int64(record.timestamp),
            key: record.key ?? record.keyBase64.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) },
            // A value a Kafka client wrote that is not JSON reaches the handler as its bytes: a
            // projection parks it as undecodable rather than taking it for a tombstone.
            value: record.value?.bytes ?? record.valueBase64.flatMap { Data(base64Encoded: $0) }.map { Array($0) },
            headers: record.headers ?? [:])
    }
}

private struct ProducerSession: TopicProducer {
    let producer: BrokerProducer

    func send(_ records: [EventBus.OutgoingRecord]) async throws {
        _ = try await producer.send(
            records.map {
                BrokerProducer.OutgoingRecord(
                    key: $0.key, value: $0.value.map(RawJSON.init(unchecked:)), headers: $0.headers.isEmpty ? nil : $0.headers,
                    timestamp: $0.timestamp.map(Int.init), partition: $0.partition)
            })
    }
}

private struct Subscription: EventSubscription {
    let consumer: GroupConsumer

    func run(_ handler: @escaping @Sendable ([BusRecord]) async throws -> Void) async throws {
        try await consumer.run(batches: { topic, records in try await handler(records.map { BrokerEventBus.busRecord($0, topic: topic) }) })
    }
}
