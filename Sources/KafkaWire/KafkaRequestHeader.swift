/// The header before every Kafka request body: v1 (`api_key`, `api_version`,
/// `correlation_id`, `client_id`), or v2 in an API's flexible versions, which adds tagged fields.
/// `client_id` is an int16-prefixed string in both (it predates compact strings).
public struct KafkaRequestHeader: Hashable, Sendable {
    public var apiKey: Int16
    public var apiVersion: Int16
    public var correlationId: Int32
    public var clientId: String?

    public init(apiKey: Int16, apiVersion: Int16, correlationId: Int32, clientId: String?) {
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    /// Reads the fixed part (key, version, correlation id): what is needed to answer or refuse
    /// even a request whose API or version is not served.
    public static func peek(_ frame: ArraySlice<UInt8>) throws(KafkaDecodeError) -> (apiKey: Int16, apiVersion: Int16, correlationId: Int32) {
        var reader = KafkaReader(frame)
        return (try reader.readInt16(), try reader.readInt16(), try reader.readInt32())
    }

    /// Reads the header; `flexible` says whether the API's version uses header v2.
    public init(from reader: inout KafkaReader, flexible: Bool) throws(KafkaDecodeError) {
        apiKey = try reader.readInt16()
        apiVersion = try reader.readInt16()
        correlationId = try reader.readInt32()
        clientId = try reader.readNullableString(compact: false)
        if flexible { try reader.skipTaggedFields() }
    }

    public func encode(into writer: inout KafkaWriter, flexible: Bool) {
        writer.writeInt16(apiKey)
        writer.writeInt16(apiVersion)
        writer.writeInt32(correlationId)
        writer.writeNullableString(clientId, compact: false)
        if flexible { writer.writeEmptyTaggedFields() }
    }
}

/// A response frame: int32 size, the response header (v0: the correlation id; v1 in flexible
/// versions adds tagged fields, except for ApiVersions, whose header is v0 in every version so
/// a client can read it before it knows what the broker speaks), then the body.
public enum KafkaResponseFrame {
    public static func make(correlationId: Int32, flexibleHeader: Bool, body: [UInt8]) -> [UInt8] {
        var writer = KafkaWriter(capacity: body.count + 9)
        writer.writeInt32(Int32(4 + (flexibleHeader ? 1 : 0) + body.count))
        writer.writeInt32(correlationId)
        if flexibleHeader { writer.writeEmptyTaggedFields() }
        writer.writeRaw(body)
        return writer.bytes
    }
}

/// Kafka's error codes that this listener sends (org.apache.kafka.common.protocol.Errors).
public enum KafkaErrorCode: Int16, Sendable {
    case unknownServerError = -1
    case none = 0
    case offsetOutOfRange = 1
    case corruptMessage = 2
    case unknownTopicOrPartition = 3
    case leaderNotAvailable = 5
    case notLeaderOrFollower = 6
    case requestTimedOut = 7
    case messageTooLarge = 10
    case coordinatorNotAvailable = 15
    case invalidTopic = 17
    case recordListTooLarge = 18
    case invalidRequiredAcks = 21
    case illegalGeneration = 22
    case inconsistentGroupProtocol = 23
    case unknownMemberId = 25
    case invalidSessionTimeout = 26
    case rebalanceInProgress = 27
    case invalidTimestamp = 32
    case unsupportedVersion = 35
    case topicAlreadyExists = 36
    case invalidPartitions = 37
    case invalidReplicationFactor = 38
    case invalidReplicaAssignment = 39
    case invalidConfig = 40
    case invalidRequest = 42
    case policyViolation = 44
    case outOfOrderSequenceNumber = 45
    case duplicateSequenceNumber = 46
    case invalidProducerEpoch = 47
    case transactionalIdAuthorizationFailed = 53
    case kafkaStorageError = 56
    case unknownProducerId = 59
    case unsupportedCompressionType = 76
    case memberIdRequired = 79
    case invalidRecord = 87
}
