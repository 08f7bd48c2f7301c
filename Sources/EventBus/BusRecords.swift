/// A record to publish. Its partition is the explicit one, else its key's (murmur2, as Kafka's
/// default partitioner computes it), else one the bus chooses.
public struct OutgoingRecord: Sendable, Hashable {
    public var key: String?
    /// The payload (events: their JSON); nil is a tombstone.
    public var value: [UInt8]?
    public var headers: [String: String]
    /// Milliseconds since the Unix epoch, UTC; event topics replace it with the append time.
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

/// A record as stored in a topic's partition.
public struct BusRecord: Sendable, Hashable {
    public var topic: String
    public var partition: Int
    public var offset: Int64
    /// Milliseconds since the Unix epoch, UTC.
    public var timestamp: Int64
    public var key: String?
    public var value: [UInt8]?
    public var headers: [String: String]

    public init(topic: String, partition: Int, offset: Int64, timestamp: Int64, key: String?, value: [UInt8]?, headers: [String: String]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Where a partition's log starts and ends.
public struct PartitionBounds: Sendable, Hashable {
    public var partition: Int
    /// The first offset still stored (retention and compaction move it up).
    public var logStartOffset: Int64
    /// The offset the next record will get.
    public var highWatermark: Int64

    public init(partition: Int, logStartOffset: Int64, highWatermark: Int64) {
        self.partition = partition
        self.logStartOffset = logStartOffset
        self.highWatermark = highWatermark
    }
}

/// A read asked for an offset its partition does not hold: the records were trimmed by
/// retention, or the bus is new and never had them. It does not heal by retrying.
public struct OffsetOutOfRange: Error, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int
    /// What the bus said.
    public var message: String

    public init(topic: String, partition: Int, message: String) {
        self.topic = topic
        self.partition = partition
        self.message = message
    }

    public var description: String { message }
}
