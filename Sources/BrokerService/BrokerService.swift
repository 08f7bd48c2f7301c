import BrokerCore
import Contracts
import LogStorage
import RPCCore
import TracingSupport

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public typealias BrokerAPI = CqrsBrokerV1

/// The RPC face of the broker (`cqrs.broker.v1.Broker`): translates messages to `BrokerCore`
/// calls and errors to status codes. No logic of its own beyond request validation.
public struct BrokerService: BrokerAPI.Broker.ServiceProtocol {
    let broker: Broker
    let protectedTopics: ProtectedTopics
    static let defaultMaxRecords = 500
    static let defaultMaxBytes = 1 << 20

    public init(broker: Broker, protectedTopics: ProtectedTopics = ProtectedTopics()) {
        self.broker = broker
        self.protectedTopics = protectedTopics
    }

    // MARK: Topics

    public func createTopic(_ request: BrokerAPI.CreateTopicRequest, context: ServerContext) async throws -> BrokerAPI.TopicDescription {
        try protectedTopics.checkWrite(request.name, context)
        var config = broker.settings.topicDefaults
        if let given = request.config { config = try Self.apply(given, to: config) }
        let timestampType: TimestampType? = request.config?.timestampType == .logAppendTime ? .logAppendTime : nil
        let topic = try broker.createTopic(
            TopicSettings(name: request.name, partitions: request.partitions ?? 1, config: config, timestampType: timestampType))
        return Self.describe(topic)
    }

    public func deleteTopic(_ request: BrokerAPI.DeleteTopicRequest, context: ServerContext) async throws -> BrokerAPI.DeleteTopicResponse {
        try protectedTopics.checkWrite(request.name, context)
        try await broker.deleteTopic(request.name)
        return BrokerAPI.DeleteTopicResponse()
    }

    public func listTopics(_ request: BrokerAPI.ListTopicsRequest, context: ServerContext) async throws -> BrokerAPI.ListTopicsResponse {
        BrokerAPI.ListTopicsResponse(
            topics: broker.allTopics().map {
                BrokerAPI.TopicSummary(
                    name: $0.name, partitions: $0.settings.partitions, cleanupPolicy: Self.policy($0.settings.config.cleanupPolicy))
            })
    }

    public func describeTopic(_ request: BrokerAPI.DescribeTopicRequest, context: ServerContext) async throws -> BrokerAPI.TopicDescription {
        Self.describe(try broker.topic(request.name))
    }

    static func describe(_ topic: Topic) -> BrokerAPI.TopicDescription {
        let config = topic.settings.config
        return BrokerAPI.TopicDescription(
            name: topic.name,
            config: BrokerAPI.TopicConfig(
                cleanupPolicy: policy(config.cleanupPolicy), retentionMs: config.retentionMs, retentionBytes: config.retentionBytes,
                segmentBytes: Int64(config.segmentBytes), segmentMs: config.segmentMs, deleteRetentionMs: config.deleteRetentionMs,
                timestampType: topic.settings.timestampType == .logAppendTime ? .logAppendTime : .createTime),
            partitions: topic.partitions.enumerated().map { partition, state in
                switch state {
                case .online(let log):
                    return BrokerAPI.PartitionDescription(
                        partition: partition, logStartOffset: log.logStartOffset, highWatermark: log.highWatermark,
                        sizeBytes: log.sizeInBytes, segments: log.segmentCount, offlineReason: log.offlineReason)
                case .failed(let reason):
                    return BrokerAPI.PartitionDescription(
                        partition: partition, logStartOffset: 0, highWatermark: 0, sizeBytes: 0, segments: 0, offlineReason: reason)
                }
            })
    }

    static func policy(_ policy: LogConfig.CleanupPolicy) -> BrokerAPI.CleanupPolicy {
        policy == .compact ? .compact : .delete
    }

    static func apply(_ given: BrokerAPI.TopicConfig, to base: LogConfig) throws -> LogConfig {
        var config = base
        if let policy = given.cleanupPolicy { config.cleanupPolicy = policy == .compact ? .compact : .delete }
        if let value = given.retentionMs { config.retentionMs = value }
        if let value = given.retentionBytes { config.retentionBytes = value }
        if let value = given.segmentBytes {
            guard let bytes = Int(exactly: value), bytes <= 1 << 30 else {
                throw BrokerError.invalid(field: "config.segmentBytes", reason: "must be 1 KiB to 1 GiB")
            }
            config.segmentBytes = bytes
        }
        if let value = given.segmentMs { config.segmentMs = value }
        if let value = given.deleteRetentionMs { config.deleteRetentionMs = value }
        return config
    }

    // MARK: Produce

    public func initProducer(_ request: BrokerAPI.InitProducerRequest, context: ServerContext) async throws -> BrokerAPI.InitProducerResponse {
        BrokerAPI.InitProducerResponse(producerId: try broker.allocateProducerId())
    }

    public func produce(_ request: BrokerAPI.ProduceRequest, context: ServerContext) async throws -> BrokerAPI.ProduceResponse {
        try protectedTopics.checkWrite(request.topic, context)
        var sequences: [Int: Int32] = [:]
        for (i, entry) in (request.sequences ?? []).enumerated() {
            guard let sequence = Int32(exactly: entry.baseSequence), sequence >= 0 else {
                throw BrokerError.invalid(field: "sequences[\(i)].baseSequence", reason: "must be 0 to 2147483647")
            }
            sequences[entry.partition] = sequence
        }
        let records = request.records.map { record in
            ProduceInput(
                key: record.key, value: record.value?.bytes,
                headers: record.headers ?? [:], timestamp: record.timestamp.map(Int64.init), partition: record.partition)
        }
        // The durable append (with its wait for the partition's fsync) as a span of its own.
        let outcome = try await Traced.span("append", attributes: [("messaging.destination.name", request.topic)]) {
            try await broker.produce(topic: request.topic, records: records, producerId: request.producerId, sequences: sequences)
        }
        if !outcome.duplicate { BrokerTraffic.shared.produced(records, topic: request.topic) }
        return BrokerAPI.ProduceResponse(
            results: outcome.positions.map { BrokerAPI.RecordPosition(partition: $0.partition, offset: $0.offset) },
            duplicate: request.producerId == nil ? nil : outcome.duplicate)
    }

    // MARK: Fetch

    public func fetch(_ request: BrokerAPI.FetchRequest, context: ServerContext) async throws -> BrokerAPI.FetchResponse {
        let maxRecords = try Self.bounded(request.maxRecords, "maxRecords", 1...100_000) ?? Self.defaultMaxRecords
        let maxWait = try Self.bounded(request.maxWaitMs, "maxWaitMs", 0...60_000) ?? 0
        let result = try await broker.fetch(
            topic: request.topic, partition: request.partition, offset: request.offset, maxRecords: maxRecords,
            maxBytes: try Self.bounded(request.maxBytes, "maxBytes", 1...Int.max) ?? Self.defaultMaxBytes,
            maxWait: .milliseconds(maxWait), minBytes: try Self.bounded(request.minBytes, "minBytes", 0...Int.max) ?? 1)
        BrokerTraffic.shared.fetched(result.records, topic: request.topic)
        return Self.response(request.topic, request.partition, result)
    }

    public func subscribe(
        _ request: BrokerAPI.SubscribeRequest, responses: MessageWriter<BrokerAPI.FetchResponse>, context: ServerContext
    ) async throws {
        let maxRecords = try Self.bounded(request.maxRecords, "maxRecords", 1...100_000) ?? Self.defaultMaxRecords
        let log = try broker.topic(request.topic).log(request.partition)
        var offset = request.offset
        while !Task.isCancelled {
            let result = try log.read(from: offset, maxRecords: maxRecords, maxBytes: Self.defaultMaxBytes)
            if result.records.isEmpty {
                await log.waitForRecord(at: result.nextOffset)
            } else {
                BrokerTraffic.shared.fetched(result.records, topic: request.topic)
                try await responses.write(Self.response(request.topic, request.partition, result))
            }
            offset = result.nextOffset
        }
    }

    static func response(_ topic: String, _ partition: Int, _ result: PartitionLog.ReadResult) -> BrokerAPI.FetchResponse {
        BrokerAPI.FetchResponse(
            topic: topic, partition: partition,
            records: result.records.map(consumedRecord(partition: partition)),
            highWatermark: result.highWatermark, logStartOffset: result.logStartOffset, nextOffset: result.nextOffset)
    }

    /// A stored record as the jframe protocol carries it. Records the Kafka port marked (see
    /// `ForeignBytes`) send their key or value base64-encoded; the marker itself is not shown.
    static func consumedRecord(partition: Int) -> (Record) -> BrokerAPI.ConsumedRecord {
        { record in
            var headers = record.headers
            var foreign = (keyIsBytes: false, valueIsBytes: false)
            if let marker = headers.firstIndex(where: { $0.key == ForeignBytes.headerKey }) {
                foreign = ForeignBytes.flags(headers)
                headers.remove(at: marker)
            }
            return BrokerAPI.ConsumedRecord(
                partition: partition, offset: record.offset, timestamp: Int(record.timestamp),
                key: foreign.keyIsBytes ? nil : record.key.map { String(decoding: $0, as: UTF8.self) },
                keyBase64: foreign.keyIsBytes ? record.key.map { Data($0).base64EncodedString() } : nil,
                value: foreign.valueIsBytes ? nil : record.value.map(RawJSON.init(unchecked:)),
                valueBase64: foreign.valueIsBytes ? record.value.map { Data($0).base64EncodedString() } : nil,
                headers: headers.isEmpty
                    ? nil
                    : Dictionary(headers.map { ($0.key, String(decoding: $0.value ?? [], as: UTF8.self)) }) { _, last in last })
        }
    }

    public func listOffsets(_ request: BrokerAPI.ListOffsetsRequest, context: ServerContext) async throws -> BrokerAPI.ListOffsetsResponse {
        let log = try broker.topic(request.topic).log(request.partition)
        switch request.spec {
        case .earliest: return BrokerAPI.ListOffsetsResponse(offset: log.logStartOffset)
        case .latest: return BrokerAPI.ListOffsetsResponse(offset: log.highWatermark)
        case .timestamp:
            guard let timestamp = request.timestamp else {
                throw BrokerError.invalid(field: "timestamp", reason: "spec TIMESTAMP needs a timestamp")
            }
            guard let found = try log.offset(forTimestamp: Int64(timestamp)) else {
                return BrokerAPI.ListOffsetsResponse(offset: log.highWatermark)
            }
            return BrokerAPI.ListOffsetsResponse(offset: found.offset, timestamp: Int(found.timestamp))
        }
    }

    // MARK: Groups

    public func joinGroup(_ request: BrokerAPI.JoinGroupRequest, context: ServerContext) async throws -> BrokerAPI.GroupMembership {
        guard !request.group.isEmpty else { throw BrokerError.invalid(field: "group", reason: "must not be empty") }
        guard !request.topics.isEmpty else { throw BrokerError.invalid(field: "topics", reason: "at least one topic") }
        let session = try Self.bounded(request.sessionTimeoutMs, "sessionTimeoutMs", 1000...300_000) ?? 10_000
        var counts: [String: Int] = [:]
        for name in request.topics { counts[name] = try broker.topic(name).settings.partitions }
        return Self.message(
            broker.groups.join(
                group: request.group, memberId: request.memberId, clientId: request.clientId, topics: request.topics,
                partitionCounts: counts, sessionTimeoutMs: session))
    }

    public func heartbeat(_ request: BrokerAPI.HeartbeatRequest, context: ServerContext) async throws -> BrokerAPI.GroupMembership {
        let owned = Set(request.owned.flatMap { entry in entry.partitions.map { TopicPartition(topic: entry.topic, partition: $0) } })
        return Self.message(try broker.groups.heartbeat(group: request.group, memberId: request.memberId, owned: owned))
    }

    public func leaveGroup(_ request: BrokerAPI.LeaveGroupRequest, context: ServerContext) async throws -> BrokerAPI.LeaveGroupResponse {
        broker.groups.leave(group: request.group, memberId: request.memberId)
        return BrokerAPI.LeaveGroupResponse()
    }

    public func commitOffsets(_ request: BrokerAPI.CommitOffsetsRequest, context: ServerContext) async throws -> BrokerAPI.CommitOffsetsResponse {
        guard !request.offsets.isEmpty else { throw BrokerError.invalid(field: "offsets", reason: "at least one offset") }
        var offsets: [TopicPartition: (offset: Int64, metadata: String?)] = [:]
        for (i, entry) in request.offsets.enumerated() {
            guard entry.offset >= 0 else { throw BrokerError.invalid(field: "offsets[\(i)].offset", reason: "must not be negative") }
            _ = try broker.topic(entry.topic).log(entry.partition)
            offsets[TopicPartition(topic: entry.topic, partition: entry.partition)] = (entry.offset, entry.metadata)
        }
        try await broker.groups.commit(
            group: request.group, memberId: request.memberId, generation: request.generation, offsets: offsets)
        return BrokerAPI.CommitOffsetsResponse()
    }

    public func fetchCommittedOffsets(
        _ request: BrokerAPI.FetchCommittedOffsetsRequest, context: ServerContext
    ) async throws -> BrokerAPI.FetchCommittedOffsetsResponse {
        let offsets = broker.groups.committedOffsets(group: request.group, topic: request.topic)
        return BrokerAPI.FetchCommittedOffsetsResponse(
            offsets: offsets.sorted { $0.key < $1.key }.map { partition, committed in
                BrokerAPI.CommittedOffset(
                    topic: partition.topic, partition: partition.partition, offset: committed.offset, metadata: committed.metadata,
                    committedAt: Int(committed.committedAt))
            })
    }

    public func listGroups(_ request: BrokerAPI.ListGroupsRequest, context: ServerContext) async throws -> BrokerAPI.ListGroupsResponse {
        BrokerAPI.ListGroupsResponse(
            groups: broker.groups.groupNames().compactMap { broker.groups.snapshot(group: $0) }.map {
                BrokerAPI.GroupSummary(group: $0.name, state: Self.state($0.state), members: $0.members.count)
            })
    }

    public func describeGroup(_ request: BrokerAPI.DescribeGroupRequest, context: ServerContext) async throws -> BrokerAPI.DescribeGroupResponse {
        guard let snapshot = broker.groups.snapshot(group: request.group) else { throw BrokerError.unknownGroup(request.group) }
        return BrokerAPI.DescribeGroupResponse(
            group: snapshot.name, state: Self.state(snapshot.state), generation: snapshot.generation,
            members: snapshot.members.map { member in
                BrokerAPI.GroupMember(
                    memberId: member.memberId, clientId: member.clientId, topics: member.topics,
                    assignment: Self.grouped(member.assignment), lastHeartbeatMsAgo: Int(member.lastHeartbeatMsAgo))
            },
            partitions: Self.lags(of: snapshot, in: broker))
    }

    /// Each partition the group follows or has committed: its committed offset, the high
    /// watermark and the records between them (from the log's start when nothing is committed).
    static func lags(of snapshot: GroupSnapshot, in broker: Broker) -> [BrokerAPI.PartitionLag] {
        let owners = Dictionary(
            snapshot.members.flatMap { member in member.assignment.map { ($0, member.memberId) } }
        ) { first, _ in first }
        let partitions = Set(snapshot.subscribedPartitions).union(snapshot.offsets.keys).sorted()
        return partitions.map { partition in
            let log = try? broker.topic(partition.topic).log(partition.partition)
            let highWatermark = log?.highWatermark ?? 0
            let committed = snapshot.offsets[partition]?.offset
            return BrokerAPI.PartitionLag(
                topic: partition.topic, partition: partition.partition, committedOffset: committed,
                highWatermark: highWatermark, lag: max(0, highWatermark - (committed ?? log?.logStartOffset ?? 0)),
                owner: owners[partition])
        }
    }

    static func message(_ membership: Membership) -> BrokerAPI.GroupMembership {
        BrokerAPI.GroupMembership(
            group: membership.group, memberId: membership.memberId, generation: membership.generation,
            assignment: grouped(membership.assignment), heartbeatIntervalMs: membership.heartbeatIntervalMs,
            pendingPartitions: membership.pendingPartitions)
    }

    static func grouped(_ partitions: [TopicPartition]) -> [BrokerAPI.TopicPartitions] {
        Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }.map {
            BrokerAPI.TopicPartitions(topic: $0.key, partitions: $0.value.map(\.partition).sorted())
        }
    }

    static func state(_ state: GroupSnapshot.State) -> BrokerAPI.GroupState {
        switch state {
        case .empty: return .empty
        case .reconciling: return .reconciling
        case .stable: return .stable
        }
    }

    static func bounded(_ value: Int?, _ field: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let value else { return nil }
        guard range.contains(value) else {
            throw BrokerError.invalid(
                field: field,
                reason: range.upperBound == Int.max ? "must be at least \(range.lowerBound)" : "must be \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}
