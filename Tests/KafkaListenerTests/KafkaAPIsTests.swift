import BrokerCore
import KafkaListener
import KafkaMessages
import KafkaWire
import LogStorage
import TestSupport
import Testing

/// `KafkaAPIs` over a broker in a temporary directory: request frames in, response frames out,
/// as a connection would see them (the sockets are the contract tests').
@Suite struct KafkaAPIsTests {
    let connection = KafkaConnectionInfo(localHost: "127.0.0.1", localPort: 9093)

    func withAPIs(_ body: (KafkaAPIs, Broker) async throws -> Void) async throws {
        let data = TemporaryDirectory(prefix: "kafka-apis")
        defer { data.cleanup() }
        let broker = try Broker(settings: BrokerSettings(dataDirectory: data.path))
        defer { broker.close() }
        var settings = KafkaListenerSettings(address: "127.0.0.1:0")
        settings.maxFetchWait = .seconds(2)
        try await body(KafkaAPIs(broker: broker, settings: settings), broker)
    }

    /// Frames `request` at `version` with a correlation id, sends it, and reads the response.
    func call<Request: KafkaMessage, Response: KafkaMessage>(
        _ apis: KafkaAPIs, _ request: Request, version: Int16, as _: Response.Type, correlationId: Int32 = 7
    ) async throws -> Response? {
        var writer = KafkaWriter()
        KafkaRequestHeader(apiKey: Request.apiKey, apiVersion: version, correlationId: correlationId, clientId: "test")
            .encode(into: &writer, flexible: Request.isFlexible(version))
        request.encode(into: &writer, version: version)
        switch await apis.handle(writer.bytes, connection: connection) {
        case .silent: return nil
        case .close(let reason): throw KafkaDecodeError.invalid("closed: \(reason)")
        case .respond(let frame):
            var reader = KafkaReader(frame)
            #expect(Int(try reader.readInt32()) == frame.count - 4)
            #expect(try reader.readInt32() == correlationId)
            if Response.isFlexible(version) && Request.apiKey != ApiVersionsRequest.apiKey { try reader.skipTaggedFields() }
            return try Response(bytes: frame[reader.position...], version: version)
        }
    }

    func produce(
        _ apis: KafkaAPIs, topic: String, partition: Int32 = 0, _ batch: KafkaRecordBatch, version: Int16 = 9, acks: Int16 = -1
    ) async throws -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse? {
        var request = ProduceRequest()
        request.acks = acks
        request.timeoutMs = 1000
        var data = ProduceRequest.TopicProduceData()
        data.name = topic
        var partitionData = ProduceRequest.TopicProduceData.PartitionProduceData()
        partitionData.index = partition
        partitionData.records = batch.encoded()
        data.partitionData = [partitionData]
        request.topicData = [data]
        return try await call(apis, request, version: version, as: ProduceResponse.self)?.responses[0].partitionResponses[0]
    }

    func fetch(_ apis: KafkaAPIs, topic: String, offset: Int64, maxWaitMs: Int32 = 0, version: Int16 = 12) async throws
        -> FetchResponse.FetchableTopicResponse.PartitionData
    {
        var request = FetchRequest()
        request.maxWaitMs = maxWaitMs
        request.minBytes = 1
        request.maxBytes = 1 << 20
        var fetchTopic = FetchRequest.FetchTopic()
        fetchTopic.topic = topic
        var partition = FetchRequest.FetchTopic.FetchPartition()
        partition.fetchOffset = offset
        partition.partitionMaxBytes = 1 << 20
        fetchTopic.partitions = [partition]
        request.topics = [fetchTopic]
        return try #require(try await call(apis, request, version: version, as: FetchResponse.self)).responses[0].partitions[0]
    }

    static func batch(_ values: [String], key: String? = "k", producerId: Int64 = -1, sequence: Int32 = -1) -> KafkaRecordBatch {
        var batch = KafkaRecordBatch()
        batch.baseTimestamp = 1_796_400_000_000
        batch.maxTimestamp = batch.baseTimestamp
        batch.lastOffsetDelta = Int32(values.count - 1)
        batch.producerId = producerId
        batch.producerEpoch = producerId >= 0 ? 0 : -1
        batch.baseSequence = sequence
        batch.records = values.enumerated().map { index, value in
            KafkaRecord(
                offset: Int64(index), timestamp: batch.baseTimestamp, key: key.map { Array($0.utf8) }, value: Array(value.utf8),
                headers: [.init(key: "type", value: Array("T".utf8))])
        }
        return batch
    }

    @Test func apiVersionsAnswersEveryVersionAndFallsBackToV0Above() async throws {
        try await withAPIs { apis, _ in
            for version: Int16 in 0...4 {
                var request = ApiVersionsRequest()
                request.clientSoftwareName = "test"
                request.clientSoftwareVersion = "1"
                let response = try #require(try await call(apis, request, version: version, as: ApiVersionsResponse.self))
                #expect(response.errorCode == 0)
                let produce = try #require(response.apiKeys.first { $0.apiKey == 0 })
                #expect(produce.minVersion == 0 && produce.maxVersion == 9)
            }
            // v7: not parsed; answered in v0 with UNSUPPORTED_VERSION and our ranges (KIP-511).
            var writer = KafkaWriter()
            KafkaRequestHeader(apiKey: 18, apiVersion: 7, correlationId: 3, clientId: nil).encode(into: &writer, flexible: true)
            guard case .respond(let frame) = await apis.handle(writer.bytes, connection: connection) else {
                Issue.record("no response")
                return
            }
            let response = try ApiVersionsResponse(bytes: frame[8...], version: 0)
            #expect(response.errorCode == KafkaErrorCode.unsupportedVersion.rawValue)
            #expect(response.apiKeys.map(\.apiKey) == KafkaAPIs.advertised.map(\.key).sorted())
        }
    }

    @Test func requestsKafkaDoesNotServeCloseTheConnection() async throws {
        try await withAPIs { apis, _ in
            for (key, version): (Int16, Int16) in [(9999, 0), (0, 2), (1, 3), (3, 13)] {
                var writer = KafkaWriter()
                KafkaRequestHeader(apiKey: key, apiVersion: version, correlationId: 1, clientId: nil).encode(into: &writer, flexible: false)
                guard case .close = await apis.handle(writer.bytes, connection: connection) else {
                    Issue.record("key \(key) v\(version) was answered")
                    continue
                }
            }
            guard case .close = await apis.handle([0, 1], connection: connection) else {
                Issue.record("a frame shorter than a header was answered")
                return
            }
        }
    }

    @Test func metadataListsTopicsAsEachVersionAsks() async throws {
        try await withAPIs { apis, broker in
            try broker.createTopic(TopicSettings(name: "a", partitions: 2, config: LogConfig()))
            try broker.createTopic(TopicSettings(name: "b", partitions: 1, config: LogConfig()))
            var all = MetadataRequest()
            all.topics = []
            // v0: an empty list is every topic.
            let v0 = try #require(try await call(apis, all, version: 0, as: MetadataResponse.self))
            #expect(v0.topics.map(\.name) == ["a", "b"])
            #expect(v0.brokers.map { "\($0.host):\($0.port)" } == ["127.0.0.1:9093"])
            // v1+: an empty list is none; null is every topic.
            #expect(try await call(apis, all, version: 12, as: MetadataResponse.self)?.topics.isEmpty == true)
            all.topics = nil
            let v12 = try #require(try await call(apis, all, version: 12, as: MetadataResponse.self))
            #expect(v12.topics.map { $0.partitions.count } == [2, 1])
            #expect(v12.topics[0].partitions.allSatisfy { $0.leaderEpoch == -1 && $0.leaderId == 0 })
            #expect(v12.topics[0].topicId != .zero && v12.topics[0].topicId != v12.topics[1].topicId)
            var named = MetadataRequest()
            named.topics = ["missing", "bad name!"].map { name in
                var topic = MetadataRequest.MetadataRequestTopic()
                topic.name = name
                return topic
            }
            let errors = try #require(try await call(apis, named, version: 9, as: MetadataResponse.self))
            #expect(errors.topics.map(\.errorCode) == [KafkaErrorCode.unknownTopicOrPartition.rawValue, KafkaErrorCode.invalidTopic.rawValue])
        }
    }

    @Test func producedBatchesAreFetchedBackAndStoredForTheJframePortToo() async throws {
        try await withAPIs { apis, broker in
            try broker.createTopic(TopicSettings(name: "t", partitions: 1, config: LogConfig()))
            let first = try #require(try await produce(apis, topic: "t", Self.batch([#"{"n":1}"#, #"{"n":2}"#]), version: 3))
            #expect(first.errorCode == 0 && first.baseOffset == 0)
            let second = try #require(try await produce(apis, topic: "t", Self.batch(["plain text"], key: nil)))
            #expect(second.baseOffset == 2)
            let data = try await fetch(apis, topic: "t", offset: 1)
            #expect(data.errorCode == 0 && data.highWatermark == 3 && data.logStartOffset == 0)
            let batches = try KafkaRecordBatch.decodeAll(try #require(data.records)[...], decompressionLimit: 1 << 20)
            let records = batches.flatMap(\.records)
            #expect(records.map(\.offset) == [1, 2])
            #expect(records.map { String(decoding: $0.value!, as: UTF8.self) } == [#"{"n":2}"#, "plain text"])
            // The hidden marker of a value that is not JSON is the broker's: Kafka readers never see it.
            #expect(records.allSatisfy { $0.headers == [.init(key: "type", value: Array("T".utf8))] })
            let stored = try broker.topic("t").log(0).read(from: 0, maxRecords: 10, maxBytes: 1 << 20).records
            #expect(ForeignBytes.flags(stored[2].headers) == (false, true))
            #expect(ForeignBytes.flags(stored[0].headers) == (false, false))
        }
    }

    @Test func anIdempotentRetryGetsItsOriginalOffsetAndAGapIsRefused() async throws {
        try await withAPIs { apis, broker in
            try broker.createTopic(TopicSettings(name: "t", partitions: 1, config: LogConfig()))
            var request = InitProducerIdRequest()
            request.transactionTimeoutMs = 60000
            let producer = try #require(try await call(apis, request, version: 4, as: InitProducerIdResponse.self))
            #expect(producer.errorCode == 0 && producer.producerEpoch == 0)
            let id = producer.producerId
            let batch = Self.batch(["1", "2"], producerId: id, sequence: 0)
            #expect(try await produce(apis, topic: "t", batch)?.baseOffset == 0)
            let retry = try #require(try await produce(apis, topic: "t", batch))
            #expect(retry.errorCode == 0 && retry.baseOffset == 0)
            let gap = try #require(try await produce(apis, topic: "t", Self.batch(["3"], producerId: id, sequence: 5)))
            #expect(gap.errorCode == KafkaErrorCode.outOfOrderSequenceNumber.rawValue)
            #expect(try broker.topic("t").log(0).highWatermark == 2)
            let next = try #require(try await produce(apis, topic: "t", Self.batch(["3"], producerId: id, sequence: 2)))
            #expect(next.errorCode == 0 && next.baseOffset == 2)
            request.transactionalId = "txn"
            #expect(try await call(apis, request, version: 4, as: InitProducerIdResponse.self)?.errorCode == KafkaErrorCode.invalidRequest.rawValue)
        }
    }

    @Test func produceRefusalsCarryKafkasCodesAndStoreNothing() async throws {
        try await withAPIs { apis, broker in
            var compacted = LogConfig()
            compacted.cleanupPolicy = .compact
            try broker.createTopic(TopicSettings(name: "c", partitions: 1, config: compacted))
            try broker.createTopic(TopicSettings(name: "t", partitions: 1, config: LogConfig()))
            #expect(try await produce(apis, topic: "c", Self.batch(["1"], key: nil))?.errorCode == KafkaErrorCode.invalidRecord.rawValue)
            #expect(try await produce(apis, topic: "t", Self.batch(["1"]), acks: 2)?.errorCode == KafkaErrorCode.invalidRequiredAcks.rawValue)
            #expect(try await produce(apis, topic: "nope", Self.batch(["1"]))?.errorCode == KafkaErrorCode.unknownTopicOrPartition.rawValue)
            var future = Self.batch(["1"])
            future.records[0].timestamp = broker.now() + 7_200_000
            #expect(try await produce(apis, topic: "t", future)?.errorCode == KafkaErrorCode.invalidTimestamp.rawValue)
            var zstd = ProduceRequest()
            zstd.acks = -1
            var topic = ProduceRequest.TopicProduceData()
            topic.name = "t"
            var partition = ProduceRequest.TopicProduceData.PartitionProduceData()
            partition.records = Self.batch(["1"]).encoded(codec: .zstd)
            topic.partitionData = [partition]
            zstd.topicData = [topic]
            let old = try await call(apis, zstd, version: 6, as: ProduceResponse.self)
            #expect(old?.responses[0].partitionResponses[0].errorCode == KafkaErrorCode.unsupportedCompressionType.rawValue)
            #expect(try broker.topic("t").log(0).highWatermark == 0)
            #expect(try await call(apis, zstd, version: 7, as: ProduceResponse.self)?.responses[0].partitionResponses[0].errorCode == 0)
            // acks=0: nothing to answer.
            #expect(try await produce(apis, topic: "t", Self.batch(["2"]), acks: 0) == nil)
            #expect(try broker.topic("t").log(0).highWatermark == 2)
        }
    }

    @Test func fetchLongPollsAndReportsAnOffsetOutOfRange() async throws {
        try await withAPIs { apis, broker in
            try broker.createTopic(TopicSettings(name: "t", partitions: 1, config: LogConfig()))
            let outOfRange = try await fetch(apis, topic: "t", offset: 5)
            #expect(outOfRange.errorCode == KafkaErrorCode.offsetOutOfRange.rawValue && outOfRange.highWatermark == 0)
            let clock = ContinuousClock()
            let before = clock.now
            #expect(try await fetch(apis, topic: "t", offset: 0, maxWaitMs: 200).records == [])
            #expect(clock.now - before >= .milliseconds(190), "an empty fetch waits its max wait")
            async let waiting = fetch(apis, topic: "t", offset: 0, maxWaitMs: 10_000)
            try await Task.sleep(for: .milliseconds(100))
            _ = try await produce(apis, topic: "t", Self.batch(["{}"]))
            let started = clock.now
            let arrived = try await waiting
            #expect(clock.now - started < .seconds(5))
            #expect(try KafkaRecordBatch.decodeAll(try #require(arrived.records)[...], decompressionLimit: 1 << 20).first?.records.count == 1)
        }
    }

    @Test func listOffsetsFindsEarliestLatestAndByTime() async throws {
        try await withAPIs { apis, broker in
            try broker.createTopic(TopicSettings(name: "t", partitions: 1, config: LogConfig()))
            let now = broker.now()
            var early = Self.batch(["1"])
            early.records[0].timestamp = now - 60_000
            _ = try await produce(apis, topic: "t", early)
            var late = Self.batch(["2"])
            late.records[0].timestamp = now
            _ = try await produce(apis, topic: "t", late)
            for (timestamp, expected): (Int64, Int64) in [(-2, 0), (-1, 2), (now - 30_000, 1), (now + 1, -1)] {
                var request = ListOffsetsRequest()
                var topic = ListOffsetsRequest.ListOffsetsTopic()
                topic.name = "t"
                var partition = ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition()
                partition.timestamp = timestamp
                topic.partitions = [partition]
                request.topics = [topic]
                let response = try #require(try await call(apis, request, version: 7, as: ListOffsetsResponse.self))
                #expect(response.topics[0].partitions[0].offset == expected, "timestamp \(timestamp)")
            }
        }
    }

    @Test func aGroupMemberJoinsSyncsCommitsAndFetchesItsOffsetsThroughBytes() async throws {
        try await withAPIs { apis, broker in
            try broker.createTopic(TopicSettings(name: "t", partitions: 2, config: LogConfig()))
            var find = FindCoordinatorRequest()
            find.coordinatorKeys = ["g"]
            let coordinator = try #require(try await call(apis, find, version: 4, as: FindCoordinatorResponse.self))
            #expect(coordinator.coordinators.map { "\($0.host):\($0.port)" } == ["127.0.0.1:9093"])
            var join = JoinGroupRequest()
            join.groupId = "g"
            join.sessionTimeoutMs = 10_000
            join.rebalanceTimeoutMs = 10_000
            join.protocolType = "consumer"
            var range = JoinGroupRequest.JoinGroupRequestProtocol()
            range.name = "range"
            range.metadata = [0, 1]
            join.protocols = [range]
            let asked = try #require(try await call(apis, join, version: 5, as: JoinGroupResponse.self))
            #expect(asked.errorCode == KafkaErrorCode.memberIdRequired.rawValue && !asked.memberId.isEmpty)
            join.memberId = asked.memberId
            let joined = try #require(try await call(apis, join, version: 5, as: JoinGroupResponse.self))
            #expect(joined.errorCode == 0 && joined.generationId == 1 && joined.leader == asked.memberId && joined.protocolName == "range")
            var sync = SyncGroupRequest()
            sync.groupId = "g"
            sync.generationId = 1
            sync.memberId = asked.memberId
            var mine = SyncGroupRequest.SyncGroupRequestAssignment()
            mine.memberId = asked.memberId
            mine.assignment = [9, 9]
            sync.assignments = [mine]
            #expect(try await call(apis, sync, version: 3, as: SyncGroupResponse.self)?.assignment == [9, 9])
            var commit = OffsetCommitRequest()
            commit.groupId = "g"
            commit.generationIdOrMemberEpoch = 1
            commit.memberId = asked.memberId
            var topic = OffsetCommitRequest.OffsetCommitRequestTopic()
            topic.name = "t"
            topic.partitions = [(Int32(0), Int64(41)), (Int32(5), Int64(1))].map { index, offset in
                var partition = OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition()
                partition.partitionIndex = index
                partition.committedOffset = offset
                partition.committedMetadata = "note"
                return partition
            }
            commit.topics = [topic]
            let committed = try #require(try await call(apis, commit, version: 8, as: OffsetCommitResponse.self))
            #expect(committed.topics[0].partitions.map(\.errorCode) == [0, KafkaErrorCode.unknownTopicOrPartition.rawValue])
            commit.generationIdOrMemberEpoch = 7
            #expect(
                try await call(apis, commit, version: 8, as: OffsetCommitResponse.self)?.topics[0].partitions[0].errorCode
                    == KafkaErrorCode.illegalGeneration.rawValue)
            // The jframe side sees the same committed offset.
            #expect(broker.groups.committedOffsets(group: "g")[TopicPartition(topic: "t", partition: 0)]?.offset == 41)
            var fetch = OffsetFetchRequest()
            fetch.groupId = "g"
            var wanted = OffsetFetchRequest.OffsetFetchRequestTopic()
            wanted.name = "t"
            wanted.partitionIndexes = [0, 1]
            fetch.topics = [wanted]
            let fetched = try #require(try await call(apis, fetch, version: 7, as: OffsetFetchResponse.self))
            #expect(fetched.topics[0].partitions.map(\.committedOffset) == [41, -1])
            #expect(fetched.topics[0].partitions[0].metadata == "note")
            var leave = LeaveGroupRequest()
            leave.groupId = "g"
            var member = LeaveGroupRequest.MemberIdentity()
            member.memberId = asked.memberId
            leave.members = [member]
            #expect(try await call(apis, leave, version: 4, as: LeaveGroupResponse.self)?.members.map(\.errorCode) == [0])
            var list = ListGroupsRequest()
            list.statesFilter = []
            let listed = try #require(try await call(apis, list, version: 4, as: ListGroupsResponse.self))
            #expect(listed.groups.map { "\($0.groupId) \($0.groupState)" } == ["g Empty"])
        }
    }

    @Test func describeConfigsListsEveryConfigWithItsSource() async throws {
        try await withAPIs { apis, broker in
            var compacted = LogConfig()
            compacted.cleanupPolicy = .compact
            try broker.createTopic(TopicSettings(name: "c", partitions: 1, config: compacted))
            var request = DescribeConfigsRequest()
            request.includeDocumentation = true
            request.resources = [(Int8(2), "c"), (Int8(2), "missing"), (Int8(4), "0"), (Int8(9), "x")].map { type, name in
                var resource = DescribeConfigsRequest.DescribeConfigsResource()
                resource.resourceType = type
                resource.resourceName = name
                return resource
            }
            let response = try #require(try await call(apis, request, version: 4, as: DescribeConfigsResponse.self))
            #expect(
                response.results.map(\.errorCode) == [0, KafkaErrorCode.unknownTopicOrPartition.rawValue, 0, KafkaErrorCode.invalidRequest.rawValue])
            let topic = Dictionary(uniqueKeysWithValues: response.results[0].configs.map { ($0.name, $0) })
            #expect(topic["cleanup.policy"]?.value == "compact" && topic["cleanup.policy"]?.configSource == 1)
            #expect(topic["retention.ms"]?.configSource == 5 && topic["retention.ms"]?.configType == 5)
            #expect(topic["max.message.bytes"]?.readOnly == true && topic["segment.bytes"]?.documentation != nil)
            #expect(response.results[2].configs.contains { $0.name == "auto.create.topics.enable" && $0.value == "false" })
            request.resources = [request.resources[0]]
            request.resources[0].configurationKeys = ["segment.ms"]
            #expect(try await call(apis, request, version: 1, as: DescribeConfigsResponse.self)?.results[0].configs.map(\.name) == ["segment.ms"])
        }
    }

    @Test func createAndDeleteTopicsMapKafkasConfigs() async throws {
        try await withAPIs { apis, broker in
            var request = CreateTopicsRequest()
            var topic = CreateTopicsRequest.CreatableTopic()
            topic.name = "orders"
            topic.numPartitions = 3
            topic.replicationFactor = -1
            topic.configs = [("cleanup.policy", "compact"), ("message.timestamp.type", "LogAppendTime")].map { name, value in
                var config = CreateTopicsRequest.CreatableTopic.CreatableTopicConfig()
                config.name = name
                config.value = value
                return config
            }
            var bad = topic
            bad.name = "other"
            bad.configs[0].value = "sometimes"
            var replicated = topic
            replicated.name = "replicated"
            replicated.replicationFactor = 3
            request.topics = [topic, bad, replicated]
            let response = try #require(try await call(apis, request, version: 7, as: CreateTopicsResponse.self))
            #expect(
                response.topics.map(\.errorCode) == [0, KafkaErrorCode.invalidConfig.rawValue, KafkaErrorCode.invalidReplicationFactor.rawValue])
            let created = try broker.topic("orders").settings
            #expect(created.partitions == 3 && created.config.cleanupPolicy == .compact && created.timestampType == .logAppendTime)
            request.topics = [topic]
            #expect(
                try await call(apis, request, version: 2, as: CreateTopicsResponse.self)?.topics[0].errorCode
                    == KafkaErrorCode.topicAlreadyExists.rawValue)
            var delete = DeleteTopicsRequest()
            delete.topicNames = ["orders", "missing"]
            let deleted = try #require(try await call(apis, delete, version: 5, as: DeleteTopicsResponse.self))
            #expect(deleted.responses.map(\.errorCode) == [0, KafkaErrorCode.unknownTopicOrPartition.rawValue])
            #expect(broker.allTopics().isEmpty)
        }
    }
}
