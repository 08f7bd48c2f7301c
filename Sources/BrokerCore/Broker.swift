import CommitScheduling
import LogStorage
import Logging
import Partitioning
import Synchronization
import WallTime

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The broker's settings that are not per topic.
public struct BrokerSettings: Sendable {
    public var dataDirectory: String
    /// Configuration for topics that do not set their own.
    public var topicDefaults = LogConfig()
    /// The largest record (key, value and headers) a producer may send.
    public var maxRecordBytes = 1 << 20
    /// The most a fetch may return.
    public var maxFetchBytes = 8 << 20
    /// How far ahead of its appends each partition's active segment is zero-filled, so that the
    /// fdatasync acknowledging an append need not commit a new file length (see `PartitionLog`).
    /// 0 turns it off (on copy-on-write file systems it only doubles the writes).
    public var preallocateBytes = PartitionLog.defaultPreallocateBytes
    /// Where each partition's fdatasync runs (see `CommitScheduler`).
    public var syncScheduler: any CommitScheduler = BackgroundCommitScheduler()
    /// Partitions of all topics together that `createTopic` may bring the broker to. Each costs
    /// a directory, memory for its indexes and producer state, and descriptors while in use
    /// (bounded apart by the file system's `DescriptorBudget`); past this, CreateTopic is
    /// RESOURCE_EXHAUSTED naming the budget. A broker always opens what its data holds, even
    /// past it (a budget lowered after the fact refuses only new topics).
    public var maxPartitions = BrokerSettings.defaultMaxPartitions
    public static let defaultMaxPartitions = 10_000
    /// How far ahead of the broker's clock a producer's timestamp may be on a CREATE_TIME topic
    /// (Kafka's `message.timestamp.after.max.ms`, the same default: an hour). A clock far ahead
    /// would keep its records past retention, or order them after every later one by time.
    public var maxTimestampAheadMs: Int64 = 3_600_000
    /// How far behind; -1: no bound (Kafka's default). A relay catching up after an outage
    /// sends timestamps as old as the outage; retention is made safe from them by the topic's
    /// LOG_APPEND_TIME, not by refusing them.
    public var maxTimestampBehindMs: Int64 = -1

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }
}

/// A record as a producer sends it.
public struct ProduceInput: Sendable, Hashable {
    public var key: String?
    public var value: [UInt8]?
    public var headers: [String: String]
    public var timestamp: Int64?
    public var partition: Int?

    public init(key: String?, value: [UInt8]?, headers: [String: String] = [:], timestamp: Int64? = nil, partition: Int? = nil) {
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
        self.partition = partition
    }
}

/// Where each record of a produce request went.
public struct ProduceOutcome: Sendable, Hashable {
    public struct Position: Sendable, Hashable {
        public var partition: Int
        public var offset: Int64
    }

    /// One per record, in request order.
    public var positions: [Position]
    /// Every partition of an idempotent request had it already.
    public var duplicate: Bool
}

/// Topics of partition logs on one machine: create, delete, produce, fetch. Consumer groups live
/// in `GroupCoordinator`. No networking here: `BrokerService` puts RPC in front of it.
///
/// Layout of the data directory:
///
///     topics/<name>/topic.json          settings
///     topics/<name>/<partition>/        one PartitionLog each
///     internal/consumer-offsets/        the compacted log of committed offsets
///     producer-ids                      the end of the reserved producer-id block
public final class Broker: Sendable {
    public let settings: BrokerSettings
    public let groups: GroupCoordinator
    private let fileSystem: any FileSystem
    private let clock: any WallClock
    private let logger: Logger
    private let topics: Mutex<[String: Topic]>
    private let producerIds: ProducerIdAllocator
    /// Counts requests, so keyless records of successive requests go to successive partitions.
    private let stickyPartition = Atomic<Int>(0)

    private var topicsDirectory: String { settings.dataDirectory + "/topics" }

    /// Opens every topic under the data directory, recovering each partition. A partition that
    /// fails to open (corruption) is reported and left offline; the others serve.
    public init(
        settings: BrokerSettings, fileSystem: any FileSystem = PosixFileSystem(), clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "broker")
    ) throws {
        self.settings = settings
        self.fileSystem = fileSystem
        self.clock = clock
        self.logger = logger
        try fileSystem.createDirectory(settings.dataDirectory + "/topics")
        try fileSystem.createDirectory(settings.dataDirectory + "/internal")
        producerIds = try ProducerIdAllocator(path: settings.dataDirectory + "/producer-ids", fileSystem: fileSystem)
        var open: [String: Topic] = [:]
        let topicsDirectory = settings.dataDirectory + "/topics"
        for name in try fileSystem.list(topicsDirectory).sorted() {
            let path = topicsDirectory + "/" + name
            if name.hasPrefix(".") {
                logger.info("removing an interrupted topic creation or deletion", metadata: ["path": "\(path)"])
                try fileSystem.removeTree(path)
                continue
            }
            guard let bytes = try fileSystem.readWholeFile(path + "/topic.json") else { continue }
            let topicSettings = try JSONDecoder().decode(TopicSettings.self, from: Data(bytes))
            open[name] = Self.openTopic(topicSettings, directory: path, settings: settings, fileSystem: fileSystem, clock: clock, logger: logger)
        }
        topics = Mutex(open)
        var offsetsConfig = LogConfig()
        offsetsConfig.cleanupPolicy = .compact
        offsetsConfig.segmentBytes = 16 << 20
        offsetsConfig.deleteRetentionMs = 86_400_000
        let offsetsLog = try PartitionLog(
            directory: settings.dataDirectory + "/internal/consumer-offsets", config: offsetsConfig, fileSystem: fileSystem,
            clock: clock, logger: logger, preallocateBytes: settings.preallocateBytes, syncScheduler: settings.syncScheduler)
        groups = try GroupCoordinator(offsetsLog: offsetsLog, clock: clock, logger: logger)
        logger.info("broker opened", metadata: ["topics": "\(open.count)", "data_dir": "\(settings.dataDirectory)"])
    }

    private static func openTopic(
        _ topicSettings: TopicSettings, directory: String, settings: BrokerSettings, fileSystem: any FileSystem,
        clock: any WallClock, logger: Logger
    ) -> Topic {
        let partitions = (0..<topicSettings.partitions).map { partition -> PartitionState in
            var partitionLogger = logger
            partitionLogger[metadataKey: "topic"] = "\(topicSettings.name)"
            partitionLogger[metadataKey: "partition"] = "\(partition)"
            do {
                return .online(
                    try PartitionLog(
                        directory: directory + "/\(partition)", config: topicSettings.config, fileSystem: fileSystem, clock: clock,
                        logger: partitionLogger, preallocateBytes: settings.preallocateBytes, syncScheduler: settings.syncScheduler))
            } catch {
                partitionLogger.error("partition left offline: it could not be opened", metadata: ["error": "\(error)"])
                return .failed("\(error)")
            }
        }
        return Topic(settings: topicSettings, directory: directory, partitions: partitions)
    }

    // MARK: Topics

    public func topic(_ name: String) throws(BrokerError) -> Topic {
        guard let topic = topics.withLock({ $0[name] }) else { throw .unknownTopic(name) }
        return topic
    }

    public func allTopics() -> [Topic] { topics.withLock { Array($0.values) }.sorted { $0.name < $1.name } }

    /// Creates the topic's directory under a hidden name and renames it into place, so a crash
    /// never leaves half a topic.
    @discardableResult
    public func createTopic(_ topicSettings: TopicSettings) throws -> Topic {
        try topicSettings.validate()
        let final = topicsDirectory + "/" + topicSettings.name
        // Hidden work names carry no topic name: a name may take 249 of a file name's 255 bytes.
        let staging = topicsDirectory + "/.creating-\(clock.nowMilliseconds())-\(UInt32.random(in: .min ... .max))"
        return try topics.withLock { topics in
            if topics[topicSettings.name] != nil || fileSystem.exists(final) { throw BrokerError.topicExists(topicSettings.name) }
            let held = topics.values.reduce(0) { $0 + $1.settings.partitions }
            if held + topicSettings.partitions > settings.maxPartitions {
                throw BrokerError.overBudget(
                    "the broker holds \(held) partitions; \(topicSettings.partitions) more would pass its budget of \(settings.maxPartitions) (--max-partitions)"
                )
            }
            try fileSystem.removeTree(staging)
            try fileSystem.createDirectory(staging)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try fileSystem.writeAtomically(staging + "/topic.json", Array(try encoder.encode(topicSettings)))
            try fileSystem.rename(staging, to: final)
            try fileSystem.syncDirectory(topicsDirectory)
            let topic = Self.openTopic(topicSettings, directory: final, settings: settings, fileSystem: fileSystem, clock: clock, logger: logger)
            topics[topicSettings.name] = topic
            logger.info(
                "topic created", metadata: ["topic": "\(topicSettings.name)", "partitions": "\(topicSettings.partitions)"])
            return topic
        }
    }

    /// Removes the topic from service, renames its directory to a hidden name, deletes it, and
    /// deletes the groups' committed offsets for it.
    public func deleteTopic(_ name: String) async throws {
        let topic = try topics.withLock { topics throws(BrokerError) -> Topic in
            guard let topic = topics.removeValue(forKey: name) else { throw .unknownTopic(name) }
            return topic
        }
        for log in topic.onlineLogs { try? log.close() }
        let doomed = topicsDirectory + "/.deleted-\(clock.nowMilliseconds())-\(UInt32.random(in: .min ... .max))"
        try fileSystem.rename(topic.directory, to: doomed)
        try fileSystem.syncDirectory(topicsDirectory)
        try fileSystem.removeTree(doomed)
        try await groups.topicDeleted(name)
        logger.info("topic deleted", metadata: ["topic": "\(name)"])
    }

    // MARK: Produce

    public func allocateProducerId() throws -> Int64 { try producerIds.next() }

    /// The broker's clock, ms since the Unix epoch: what LOG_APPEND_TIME topics stamp records with.
    public func now() -> Int64 { clock.nowMilliseconds() }

    /// The timestamp a record is stored with: the broker's clock on a LOG_APPEND_TIME topic or
    /// when the producer gave none, else the producer's within the bounds.
    private func recordTimestamp(
        _ given: Int64?, topic: Topic, now: Int64, field: @autoclosure () -> String
    ) throws(BrokerError) -> Int64 {
        guard let given, topic.settings.timestampType != .logAppendTime else { return now }
        guard given >= 0 else { throw .invalid(field: field(), reason: "must be 0 or more (milliseconds since the Unix epoch)") }
        if given > now, given - now > settings.maxTimestampAheadMs {
            throw .invalid(
                field: field(),
                reason:
                    "\(given) is \(given - now) ms ahead of the broker's clock (\(now)); at most \(settings.maxTimestampAheadMs) ms ahead is accepted (--max-timestamp-ahead-ms), or use a LOG_APPEND_TIME topic"
            )
        }
        if settings.maxTimestampBehindMs >= 0, now - given > settings.maxTimestampBehindMs {
            throw .invalid(
                field: field(),
                reason:
                    "\(given) is \(now - given) ms behind the broker's clock (\(now)); at most \(settings.maxTimestampBehindMs) ms behind is accepted (--max-timestamp-behind-ms), or use a LOG_APPEND_TIME topic"
            )
        }
        return given
    }

    /// Checks one record against the topic's rules and the broker's limits and gives it the
    /// timestamp it is stored with: what every way of producing applies. `index` names the
    /// record in errors (`records[i]`), spelled out only when one is thrown: a batch of a thousand
    /// records must not format a thousand field names.
    private func admit(_ record: inout Record, producerTimestamp: Int64?, topic: Topic, now: Int64, index: Int) throws(BrokerError) {
        if topic.settings.config.cleanupPolicy == .compact && record.key == nil {
            throw BrokerError.invalid(field: "records[\(index)].key", reason: "topic \(topic.name) is compacted: every record needs a key")
        }
        record.timestamp = try recordTimestamp(producerTimestamp, topic: topic, now: now, field: "records[\(index)].timestamp")
        // The log stores a header's name behind a 16-bit length (`RecordBatch`'s layout).
        if let long = record.headers.first(where: { $0.key.utf8.count > RecordBatch.maxHeaderNameBytes }) {
            throw BrokerError.invalid(
                field: "records[\(index)].headers",
                reason: "a header name of \(long.key.utf8.count) bytes; at most \(RecordBatch.maxHeaderNameBytes) are stored")
        }
        let size = record.encodedSize
        guard size <= settings.maxRecordBytes else {
            throw BrokerError.tooLarge("records[\(index)] takes \(size) bytes, over the limit of \(settings.maxRecordBytes)")
        }
    }

    /// Appends records a client has already placed on a partition, as one batch (Kafka's
    /// producers choose partitions themselves and send one batch per partition). Each record's
    /// `timestamp` is the producer's (-1: none, Kafka's NO_TIMESTAMP) and is checked and replaced
    /// like `produce`'s; returns once
    /// the batch is durable, or, for an idempotent producer's retry, with the offsets it got then.
    public func append(
        topic name: String, partition: Int, records: consuming [Record], producer: ProducerStamp? = nil
    ) async throws -> PartitionLog.AppendResult {
        let topic = try topic(name)
        let log = try topic.log(partition)
        guard !records.isEmpty else { throw BrokerError.invalid(field: "records", reason: "at least one record") }
        let now = clock.nowMilliseconds()
        for index in records.indices {
            let given = records[index].timestamp
            try admit(&records[index], producerTimestamp: given == -1 ? nil : given, topic: topic, now: now, index: index)
        }
        return try await log.append(records, producer: producer)
    }

    /// Routes, validates and appends records; returns once every record is durable.
    ///
    /// Everything is checked before anything is written. Partitions are appended concurrently,
    /// so when one fails others may be stored: an idempotent retry then completes the request
    /// without duplicating what went in.
    public func produce(
        topic name: String, records: [ProduceInput], producerId: Int64? = nil, sequences: [Int: Int32] = [:]
    ) async throws -> ProduceOutcome {
        let topic = try topic(name)
        guard !records.isEmpty else { throw BrokerError.invalid(field: "records", reason: "at least one record") }
        let count = topic.settings.partitions
        let sticky = stickyPartition.wrappingAdd(1, ordering: .relaxed).oldValue % count
        let now = clock.nowMilliseconds()
        var byPartition: [Int: [(index: Int, record: Record)]] = [:]
        for (index, input) in records.enumerated() {
            let field = { "records[\(index)]" }
            let partition: Int
            if let explicit = input.partition {
                guard (0..<count).contains(explicit) else {
                    throw BrokerError.invalid(field: field() + ".partition", reason: "topic \(name) has partitions 0 to \(count - 1)")
                }
                partition = explicit
            } else if producerId != nil {
                throw BrokerError.invalid(field: field() + ".partition", reason: "an idempotent request sets every record's partition")
            } else if let key = input.key {
                partition = Partitioner.partition(forKey: Array(key.utf8), partitions: count)
            } else {
                partition = sticky
            }
            if let reserved = input.headers.keys.first(where: { $0.hasPrefix(ForeignBytes.reservedPrefix) }) {
                throw BrokerError.invalid(
                    field: field() + ".headers", reason: "header names starting with NUL are the broker's (\(reserved.debugDescription))")
            }
            var record = Record(
                timestamp: 0, key: input.key.map { Array($0.utf8) }, value: input.value,
                headers: input.headers.sorted { $0.key < $1.key }.map { RecordHeader(key: $0.key, value: Array($0.value.utf8)) })
            try admit(&record, producerTimestamp: input.timestamp, topic: topic, now: now, index: index)
            byPartition[partition, default: []].append((index, record))
        }
        if producerId != nil {
            for partition in byPartition.keys where sequences[partition] == nil {
                throw BrokerError.invalid(field: "sequences", reason: "no base sequence for partition \(partition)")
            }
        } else if !sequences.isEmpty {
            throw BrokerError.invalid(field: "sequences", reason: "sequences need a producerId")
        }
        let logs = try byPartition.keys.map { partition throws(BrokerError) in (partition, try topic.log(partition)) }
        if let producerId {
            for (partition, log) in logs {
                try log.checkSequence(
                    ProducerStamp(producerId: producerId, baseSequence: sequences[partition]!),
                    recordCount: byPartition[partition]!.count)
            }
        }
        if logs.count == 1, let (partition, log) = logs.first {
            // The common case (one partition per request) appends in this task: no child task to
            // schedule and join on the latency path. Its records keep the request's order, so the
            // positions are made by `map`, which the compiler specializes: `Array(repeating:count:)`
            // allocates through the standard library's unspecialized generic path (about 1,000
            // instructions a produce, callgrind).
            let stamp = producerId.map { ProducerStamp(producerId: $0, baseSequence: sequences[partition]!) }
            let result = try await log.append(byPartition[partition]!.map(\.record), producer: stamp)
            let positions = (0..<Int64(records.count)).map { ProduceOutcome.Position(partition: partition, offset: result.baseOffset + $0) }
            return ProduceOutcome(positions: positions, duplicate: producerId != nil && result.duplicate)
        }
        var positions = [ProduceOutcome.Position](repeating: .init(partition: 0, offset: 0), count: records.count)
        var allDuplicate = true
        try await withThrowingTaskGroup(of: (Int, PartitionLog.AppendResult).self) { group in
            for (partition, log) in logs {
                let stamp = producerId.map { ProducerStamp(producerId: $0, baseSequence: sequences[partition]!) }
                let batch = byPartition[partition]!.map(\.record)
                group.addTask { (partition, try await log.append(batch, producer: stamp)) }
            }
            for try await (partition, result) in group {
                allDuplicate = allDuplicate && result.duplicate
                for (i, entry) in byPartition[partition]!.enumerated() {
                    positions[entry.index] = .init(partition: partition, offset: result.baseOffset + Int64(i))
                }
            }
        }
        return ProduceOutcome(positions: positions, duplicate: producerId != nil && allDuplicate)
    }

    // MARK: Fetch

    /// Reads a partition; with `maxWait`, waits until `minBytes` of records are there or the
    /// wait is over.
    public func fetch(
        topic name: String, partition: Int, offset: Int64, maxRecords: Int, maxBytes: Int, maxWait: Duration = .zero,
        minBytes: Int = 1
    ) async throws -> PartitionLog.ReadResult {
        let log = try topic(name).log(partition)
        let maxBytes = min(maxBytes, settings.maxFetchBytes)
        var result = try log.read(from: offset, maxRecords: maxRecords, maxBytes: maxBytes)
        let deadline = ContinuousClock.now + maxWait
        while result.bytes < minBytes && result.records.count < maxRecords {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, !Task.isCancelled else { break }
            guard await log.waitForRecord(at: result.highWatermark, timeout: remaining) else { break }
            result = try log.read(from: offset, maxRecords: maxRecords, maxBytes: maxBytes)
        }
        return result
    }

    // MARK: Maintenance

    /// Rolls expired segments, applies retention and compaction, and writes checkpoints: run
    /// periodically by the broker binary.
    public func maintain() {
        for topic in allTopics() {
            for log in topic.onlineLogs {
                do {
                    try log.rollIfExpired()
                    try log.applyRetention()
                    try log.compact()
                    try log.checkpoint()
                } catch {
                    logger.error("maintenance failed", metadata: ["log": "\(log.directory)", "error": "\(error)"])
                }
            }
        }
        groups.maintain()
    }

    /// Checkpoints and closes every log.
    public func close() {
        for topic in allTopics() {
            for log in topic.onlineLogs { try? log.close() }
        }
        groups.close()
    }
}
