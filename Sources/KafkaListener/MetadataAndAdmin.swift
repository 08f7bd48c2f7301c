import BrokerCore
import KafkaMessages
import KafkaWire
import LogStorage

// Metadata (3), CreateTopics (19), DeleteTopics (20), InitProducerId (22), ListOffsets (2):
// the requests a client makes around producing and fetching.

extension KafkaAPIs {
    // MARK: Metadata

    func metadata(_ request: MetadataRequest, version: Int16, connection: KafkaConnectionInfo) async -> MetadataResponse {
        var response = MetadataResponse()
        var broker = MetadataResponse.MetadataResponseBroker()
        broker.nodeId = Self.nodeId
        broker.host = settings.advertisedAddress?.host ?? connection.localHost
        broker.port = Int32(settings.advertisedAddress?.port ?? connection.localPort)
        response.brokers = [broker]
        response.clusterId = Self.clusterId
        response.controllerId = Self.nodeId
        response.clusterAuthorizedOperations = Int32.min
        // v0: an empty list means every topic; v1+: null means every topic, empty means none.
        let names: [String]? =
            if let topics = request.topics, !(version == 0 && topics.isEmpty) { topics.map { $0.name ?? "" } } else { nil }
        let known = self.broker.allTopics()
        if let names {
            response.topics = names.map { name in
                if let topic = known.first(where: { $0.name == name }) { return Self.describe(topic) }
                var missing = MetadataResponse.MetadataResponseTopic()
                missing.name = name
                do {
                    try TopicSettings.validate(name: name)
                    missing.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                } catch {
                    missing.errorCode = KafkaErrorCode.invalidTopic.rawValue
                }
                return missing
            }
        } else {
            response.topics = known.map(Self.describe)
        }
        return response
    }

    static func describe(_ topic: Topic) -> MetadataResponse.MetadataResponseTopic {
        var entry = MetadataResponse.MetadataResponseTopic()
        entry.name = topic.name
        entry.topicId = topicId(topic.name)
        entry.topicAuthorizedOperations = Int32.min
        entry.partitions = topic.partitions.indices.map { index in
            var partition = MetadataResponse.MetadataResponseTopic.MetadataResponsePartition()
            partition.partitionIndex = Int32(index)
            partition.leaderId = nodeId
            // -1: clients then skip OffsetForLeaderEpoch, which a log without epochs cannot answer.
            partition.leaderEpoch = -1
            partition.replicaNodes = [nodeId]
            partition.isrNodes = [nodeId]
            if case .failed = topic.partitions[index] {
                partition.errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                partition.offlineReplicas = [nodeId]
            }
            return partition
        }
        return entry
    }

    /// A topic's id for Metadata v10+ and CreateTopics v7+: derived from its name (FNV-1a, two
    /// seeds), so it is stable across restarts without being stored. Nothing looks topics up by
    /// id yet (that comes with Fetch v13+, which is not advertised).
    static func topicId(_ name: String) -> KafkaUUID {
        func fnv(_ seed: UInt64) -> UInt64 {
            var hash = seed
            for byte in name.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            return hash
        }
        return KafkaUUID(high: fnv(0xCBF2_9CE4_8422_2325), low: fnv(0x84222325_CBF29CE4) | 1)
    }

    // MARK: CreateTopics, DeleteTopics

    /// The integer configs a topic takes, by Kafka's name.
    static let integerConfigs: [String: any WritableKeyPath<LogConfig, Int64> & Sendable] = [
        "retention.ms": \.retentionMs, "retention.bytes": \.retentionBytes, "segment.ms": \.segmentMs,
        "delete.retention.ms": \.deleteRetentionMs,
    ]

    /// Kafka's topic configs this broker has an equivalent of; any other is INVALID_CONFIG.
    static func apply(config name: String, value: String?, to settings: inout TopicSettings) -> String? {
        guard let value else { return "config \(name) has no value" }
        if let field = integerConfigs[name] {
            guard let number = Int64(value) else { return "\(name) must be an integer" }
            settings.config[keyPath: field] = number
            return nil
        }
        switch name {
        case "cleanup.policy":
            guard let policy = LogConfig.CleanupPolicy(rawValue: value) else { return "cleanup.policy is delete or compact, not \(value)" }
            settings.config.cleanupPolicy = policy
        case "segment.bytes":
            guard let bytes = Int(value) else { return "segment.bytes must be an integer" }
            settings.config.segmentBytes = bytes
        case "message.timestamp.type":
            switch value {
            case "CreateTime": settings.timestampType = .createTime
            case "LogAppendTime": settings.timestampType = .logAppendTime
            default: return "message.timestamp.type is CreateTime or LogAppendTime, not \(value)"
            }
        default:
            return
                "config \(name) is not supported (supported: cleanup.policy, retention.ms, retention.bytes, segment.bytes, segment.ms, delete.retention.ms, message.timestamp.type)"
        }
        return nil
    }

    func createTopics(_ request: CreateTopicsRequest, version: Int16) -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        response.topics = request.topics.map { topic in
            var result = CreateTopicsResponse.CreatableTopicResult()
            result.name = topic.name
            result.topicId = Self.topicId(topic.name)
            func fail(_ code: KafkaErrorCode, _ message: String) -> CreateTopicsResponse.CreatableTopicResult {
                result.errorCode = code.rawValue
                result.errorMessage = message
                result.numPartitions = -1
                result.replicationFactor = -1
                return result
            }
            // -1: the broker's default, one partition (Kafka's num.partitions).
            let partitions = topic.numPartitions == -1 ? 1 : Int(topic.numPartitions)
            guard partitions >= 1 else { return fail(.invalidPartitions, "the number of partitions must be at least 1") }
            guard topic.replicationFactor == -1 || topic.replicationFactor == 1 else {
                return fail(.invalidReplicationFactor, "this broker is one node: the replication factor is 1")
            }
            guard topic.assignments.isEmpty else { return fail(.invalidReplicaAssignment, "this broker is one node: no replica assignments") }
            var settings = TopicSettings(name: topic.name, partitions: partitions, config: self.broker.settings.topicDefaults)
            for config in topic.configs {
                if let problem = Self.apply(config: config.name, value: config.value, to: &settings) { return fail(.invalidConfig, problem) }
            }
            do {
                try TopicSettings.validate(name: topic.name)
            } catch {
                return fail(.invalidTopic, "\(error)")
            }
            if request.validateOnly {
                if (try? self.broker.topic(topic.name)) != nil { return fail(.topicAlreadyExists, "topic \(topic.name) already exists") }
            } else {
                do {
                    try self.broker.createTopic(settings)
                } catch let error as BrokerError {
                    switch error {
                    case .topicExists: return fail(.topicAlreadyExists, error.description)
                    case .invalid(let field, _) where field == "partitions": return fail(.invalidPartitions, error.description)
                    case .invalid: return fail(.invalidConfig, error.description)
                    case .overBudget: return fail(.policyViolation, error.description)
                    default: return fail(.unknownServerError, error.description)
                    }
                } catch {
                    return fail(.unknownServerError, "\(error)")
                }
            }
            result.numPartitions = Int32(partitions)
            result.replicationFactor = 1
            result.configs = nil
            return result
        }
        return response
    }

    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16) async -> DeleteTopicsResponse {
        var response = DeleteTopicsResponse()
        var results: [DeleteTopicsResponse.DeletableTopicResult] = []
        for name in request.topicNames {
            var result = DeleteTopicsResponse.DeletableTopicResult()
            result.name = name
            do {
                try await broker.deleteTopic(name)
            } catch BrokerError.unknownTopic {
                result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                result.errorMessage = "topic \(name) does not exist"
            } catch {
                result.errorCode = KafkaErrorCode.unknownServerError.rawValue
                result.errorMessage = "\(error)"
            }
            results.append(result)
        }
        response.responses = results
        return response
    }

    // MARK: InitProducerId

    /// A new producer id at epoch 0 for every request, from the same durable allocator as the
    /// jframe port's InitProducer: ids are never reused, so a client that asks again (a restart,
    /// or an epoch bump after a timeout) starts sequences afresh under a new id.
    func initProducerId(_ request: InitProducerIdRequest, version: Int16) -> InitProducerIdResponse {
        var response = InitProducerIdResponse()
        guard request.transactionalId == nil else {
            logger.info("refused InitProducerId with a transactional id: transactions are not served")
            response.errorCode = KafkaErrorCode.invalidRequest.rawValue
            return response
        }
        do {
            response.producerId = try broker.allocateProducerId()
            response.producerEpoch = 0
        } catch {
            logger.error("no producer id could be allocated", metadata: ["error": "\(error)"])
            response.errorCode = KafkaErrorCode.unknownServerError.rawValue
        }
        return response
    }

    // MARK: ListOffsets

    /// Earliest (-2), latest (-1: the high watermark) or the first offset at or after a time.
    func listOffsets(_ request: ListOffsetsRequest, version: Int16) -> ListOffsetsResponse {
        var response = ListOffsetsResponse()
        response.topics = request.topics.map { topic in
            var topicResponse = ListOffsetsResponse.ListOffsetsTopicResponse()
            topicResponse.name = topic.name
            topicResponse.partitions = topic.partitions.map { partition in
                var result = ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse()
                result.partitionIndex = partition.partitionIndex
                result.leaderEpoch = -1
                do {
                    let log = try broker.topic(topic.name).log(Int(partition.partitionIndex))
                    switch partition.timestamp {
                    case -2:
                        result.offset = log.logStartOffset
                        result.timestamp = -1
                    case -1:
                        result.offset = log.highWatermark
                        result.timestamp = -1
                    case ..<0:
                        result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                    default:
                        if let found = try log.offset(forTimestamp: partition.timestamp) {
                            result.offset = found.offset
                            result.timestamp = found.timestamp
                        } else {
                            result.offset = -1
                            result.timestamp = -1
                        }
                    }
                } catch {
                    result.errorCode = Self.errorCode(for: error).rawValue
                }
                return result
            }
            return topicResponse
        }
        return response
    }

    /// The Kafka error code closest to one of the broker's errors.
    static func errorCode(for error: any Error) -> KafkaErrorCode {
        switch error {
        case let error as BrokerError:
            switch error {
            case .unknownTopic, .unknownPartition: return .unknownTopicOrPartition
            case .tooLarge: return .messageTooLarge
            case .invalid(let field, _) where field.hasSuffix(".timestamp"): return .invalidTimestamp
            case .invalid: return .invalidRecord
            case .partitionUnavailable: return .kafkaStorageError
            case .storage(let storage): return errorCode(for: storage)
            default: return .unknownServerError
            }
        case let error as StorageError:
            switch error {
            case .outOfOrderSequence: return .outOfOrderSequenceNumber
            case .tooLarge: return .messageTooLarge
            case .offsetOutOfRange: return .offsetOutOfRange
            case .offline, .corruption, .io: return .kafkaStorageError
            }
        default:
            return .unknownServerError
        }
    }
}

// MARK: DescribeConfigs

extension KafkaAPIs {
    /// One config as DescribeConfigs lists it: Kafka's name, its value here, where it comes from.
    struct ConfigEntry {
        enum Kind: Int8 {
            case boolean = 1
            case string = 2
            case int = 3
            case long = 5
        }
        /// Kafka's ConfigSource: 1 set on the topic, 4 the broker's static config, 5 a default.
        enum Source: Int8 {
            case topic = 1
            case staticBroker = 4
            case `default` = 5
        }

        var name: String
        var value: String
        var kind: Kind
        var source: Source
        var readOnly: Bool
        var documentation: String
    }

    /// A topic's configs, every one with its value (clients and tools expect the full list: an
    /// empty one broke librdkafka's tests against another broker). A value equal to the broker's
    /// default for new topics is reported as the default.
    func topicConfigs(_ topic: Topic) -> [ConfigEntry] {
        let config = topic.settings.config
        let defaults = broker.settings.topicDefaults
        func entry(_ name: String, _ value: String, _ fallback: String, _ kind: ConfigEntry.Kind, _ doc: String) -> ConfigEntry {
            ConfigEntry(name: name, value: value, kind: kind, source: value == fallback ? .default : .topic, readOnly: false, documentation: doc)
        }
        return [
            entry("cleanup.policy", config.cleanupPolicy.rawValue, defaults.cleanupPolicy.rawValue, .string, "delete or compact"),
            entry("retention.ms", "\(config.retentionMs)", "\(defaults.retentionMs)", .long, "how long sealed segments are kept; -1 forever"),
            entry(
                "retention.bytes", "\(config.retentionBytes)", "\(defaults.retentionBytes)", .long,
                "the size old segments are deleted down to; -1 none"),
            entry("segment.bytes", "\(config.segmentBytes)", "\(defaults.segmentBytes)", .int, "a segment rolls before passing this size"),
            entry("segment.ms", "\(config.segmentMs)", "\(defaults.segmentMs)", .long, "a segment rolls after taking appends this long"),
            entry(
                "delete.retention.ms", "\(config.deleteRetentionMs)", "\(defaults.deleteRetentionMs)", .long,
                "how long a tombstone stays on a compacted topic"),
            entry(
                "message.timestamp.type", topic.settings.timestampType == .logAppendTime ? "LogAppendTime" : "CreateTime", "CreateTime", .string,
                "whose clock a record's timestamp is"),
            ConfigEntry(
                name: "max.message.bytes", value: "\(broker.settings.maxRecordBytes)", kind: .int, source: .staticBroker, readOnly: true,
                documentation: "the largest record (the broker's --max-record-bytes)"),
        ]
    }

    /// The broker's own configs (resource type 4): what a client may want to know, read-only.
    func brokerConfigs() -> [ConfigEntry] {
        [
            ConfigEntry(
                name: "num.partitions", value: "1", kind: .int, source: .staticBroker, readOnly: true,
                documentation: "partitions of a topic created with -1"),
            ConfigEntry(
                name: "auto.create.topics.enable", value: "false", kind: .boolean, source: .staticBroker, readOnly: true,
                documentation: "Metadata never creates topics"),
            ConfigEntry(
                name: "message.max.bytes", value: "\(broker.settings.maxRecordBytes)", kind: .int, source: .staticBroker, readOnly: true,
                documentation: "the largest record"),
            ConfigEntry(
                name: "socket.request.max.bytes", value: "\(settings.maxRequestBytes)", kind: .int, source: .staticBroker, readOnly: true,
                documentation: "the largest request frame"),
            ConfigEntry(
                name: "group.min.session.timeout.ms", value: "\(settings.groupMinSessionTimeoutMs)", kind: .int, source: .staticBroker,
                readOnly: true,
                documentation: "the shortest session timeout a group member may ask for"),
            ConfigEntry(
                name: "group.max.session.timeout.ms", value: "\(settings.groupMaxSessionTimeoutMs)", kind: .int, source: .staticBroker,
                readOnly: true,
                documentation: "the longest session timeout a group member may ask for"),
        ]
    }

    func describeConfigs(_ request: DescribeConfigsRequest, version: Int16) -> DescribeConfigsResponse {
        var response = DescribeConfigsResponse()
        response.results = request.resources.map { resource in
            var result = DescribeConfigsResponse.DescribeConfigsResult()
            result.resourceType = resource.resourceType
            result.resourceName = resource.resourceName
            let entries: [ConfigEntry]
            switch resource.resourceType {
            case 2:
                guard let topic = try? broker.topic(resource.resourceName) else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    result.errorMessage = "topic \(resource.resourceName) does not exist"
                    return result
                }
                entries = topicConfigs(topic)
            case 4:
                entries = brokerConfigs()
            default:
                result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                result.errorMessage = "resource type \(resource.resourceType) is not described here (2: topic, 4: broker)"
                return result
            }
            result.configs = entries.filter { resource.configurationKeys?.contains($0.name) ?? true }.map { entry in
                var config = DescribeConfigsResponse.DescribeConfigsResult.DescribeConfigsResourceResult()
                config.name = entry.name
                config.value = entry.value
                config.readOnly = entry.readOnly
                config.configSource = entry.source.rawValue
                config.configType = entry.kind.rawValue
                config.documentation = request.includeDocumentation ? entry.documentation : nil
                return config
            }
            return result
        }
        return response
    }
}
