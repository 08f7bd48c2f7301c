import LogStorage

/// Whose clock a record's timestamp is (Kafka's `message.timestamp.type`).
public enum TimestampType: String, Codable, Hashable, Sendable {
    /// The producer's, within the broker's bounds.
    case createTime
    /// The broker's, when it appends: retention by time then counts from the append, whatever
    /// the producer's clock says. For topics whose consumers do not need the producer's time in
    /// the record (the relay's event topics carry it in `ce_time`).
    case logAppendTime
}

/// What a topic is made of, as stored in its `topic.json`.
public struct TopicSettings: Codable, Hashable, Sendable {
    public var name: String
    public var partitions: Int
    public var config: LogConfig
    /// Absent in topics made before it existed: those are `.createTime`.
    public var timestampType: TimestampType?

    public init(name: String, partitions: Int, config: LogConfig, timestampType: TimestampType? = nil) {
        self.name = name
        self.partitions = partitions
        self.config = config
        self.timestampType = timestampType
    }

    /// Names are safe as directory names and cannot collide with the broker's own files.
    public static func validate(name: String) throws(BrokerError) {
        let allowed = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        guard !name.isEmpty, name.utf8.count <= 249, allowed, let first = name.utf8.first,
            first != UInt8(ascii: "."), first != UInt8(ascii: "_"), first != UInt8(ascii: "-")
        else {
            throw .invalid(
                field: "name",
                reason: "a topic name is 1 to 249 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'")
        }
    }

    func validate() throws(BrokerError) {
        try Self.validate(name: name)
        guard (1...1024).contains(partitions) else { throw .invalid(field: "partitions", reason: "must be 1 to 1024") }
        guard (1024...(1 << 30)).contains(config.segmentBytes) else {
            throw .invalid(field: "config.segmentBytes", reason: "must be 1 KiB to 1 GiB")
        }
        guard config.segmentMs >= 1 else { throw .invalid(field: "config.segmentMs", reason: "must be positive") }
        guard config.retentionMs >= -1 else { throw .invalid(field: "config.retentionMs", reason: "must be -1 or more") }
        guard config.retentionBytes >= -1 else { throw .invalid(field: "config.retentionBytes", reason: "must be -1 or more") }
        guard config.deleteRetentionMs >= 0 else {
            throw .invalid(field: "config.deleteRetentionMs", reason: "must be 0 or more")
        }
    }
}

/// One partition of a topic: its log, or why it could not be opened.
public enum PartitionState: Sendable {
    case online(PartitionLog)
    case failed(String)
}

/// An open topic. Immutable: partitions are fixed at creation.
public final class Topic: Sendable {
    public let settings: TopicSettings
    public let directory: String
    public let partitions: [PartitionState]

    init(settings: TopicSettings, directory: String, partitions: [PartitionState]) {
        self.settings = settings
        self.directory = directory
        self.partitions = partitions
    }

    public var name: String { settings.name }

    /// The partition's log, or the error that says why there is none.
    public func log(_ partition: Int) throws(BrokerError) -> PartitionLog {
        guard partitions.indices.contains(partition) else {
            throw .unknownPartition(topic: name, partition: partition, partitions: partitions.count)
        }
        switch partitions[partition] {
        case .online(let log): return log
        case .failed(let reason): throw .partitionUnavailable(topic: name, partition: partition, reason: reason)
        }
    }

    var onlineLogs: [PartitionLog] {
        partitions.compactMap { if case .online(let log) = $0 { log } else { nil } }
    }
}
