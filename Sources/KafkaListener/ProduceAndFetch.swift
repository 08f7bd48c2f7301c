import BrokerCore
import JSONCoding
import KafkaMessages
import KafkaWire
import LogStorage

// Produce (0) and Fetch (1): record batches in and out of the partition logs.

extension KafkaAPIs {
    // MARK: Produce

    /// Appends each partition's batch (partitions concurrently) and answers once every one is
    /// durable: acks 1 and -1 alike wait for the fdatasync, as jframe Produce does (one node
    /// holds every replica there is); acks 0 gets no response at all.
    func produce(_ request: ProduceRequest, version: Int16) async -> ProduceResponse? {
        var response = ProduceResponse()
        let acks = request.acks
        let work = request.topicData.flatMap { topic in topic.partitionData.map { (topic.name, $0) } }
        var results: [Int: ProduceResponse.TopicProduceResponse.PartitionProduceResponse] = [:]
        if ![0, 1, -1].contains(acks) {
            for (index, item) in work.enumerated() {
                results[index] = Self.produceFailure(item.1.index, .invalidRequiredAcks, "acks must be 0, 1 or -1, not \(acks)")
            }
        } else if request.transactionalId != nil {
            for (index, item) in work.enumerated() {
                results[index] = Self.produceFailure(item.1.index, .transactionalIdAuthorizationFailed, "transactions are not served")
            }
        } else if work.count == 1 {
            results[0] = await producePartition(topic: work[0].0, work[0].1, version: version)
        } else {
            await withTaskGroup(of: (Int, ProduceResponse.TopicProduceResponse.PartitionProduceResponse).self) { group in
                for (index, item) in work.enumerated() {
                    group.addTask { (index, await self.producePartition(topic: item.0, item.1, version: version)) }
                }
                for await (index, result) in group { results[index] = result }
            }
        }
        guard acks != 0 else { return nil }
        var index = 0
        response.responses = request.topicData.map { topic in
            var topicResponse = ProduceResponse.TopicProduceResponse()
            topicResponse.name = topic.name
            topicResponse.partitionResponses = topic.partitionData.map { _ in
                defer { index += 1 }
                return results[index]!
            }
            return topicResponse
        }
        return response
    }

    static func produceFailure(
        _ partition: Int32, _ code: KafkaErrorCode, _ message: String
    ) -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse {
        var result = ProduceResponse.TopicProduceResponse.PartitionProduceResponse()
        result.index = partition
        result.errorCode = code.rawValue
        result.errorMessage = message
        result.baseOffset = -1
        return result
    }

    private func producePartition(
        topic name: String, _ data: ProduceRequest.TopicProduceData.PartitionProduceData, version: Int16
    ) async -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse {
        func fail(_ code: KafkaErrorCode, _ message: String) -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse {
            logger.debug("produce refused", metadata: ["topic": "\(name)", "partition": "\(data.index)", "error": "\(message)"])
            return Self.produceFailure(data.index, code, message)
        }
        let topic: Topic
        let log: PartitionLog
        do {
            topic = try broker.topic(name)
            log = try topic.log(Int(data.index))
        } catch {
            return fail(Self.errorCode(for: error), "\(error)")
        }
        guard let bytes = data.records, !bytes.isEmpty else { return fail(.invalidRecord, "no records") }
        let batch: KafkaRecordBatch
        do {
            let batches = try KafkaRecordBatch.decodeAll(bytes[...], decompressionLimit: topic.settings.config.maxBatchBytes)
            guard batches.count == 1 else {
                return fail(.invalidRecord, "Produce v3+ carries exactly one record batch per partition, not \(batches.count)")
            }
            batch = batches[0]
            if batch.codec == .zstd && version < 7 { return fail(.unsupportedCompressionType, "zstd needs Produce v7 or later") }
            try batch.validateForProduce()
        } catch {
            switch error {
            case .corrupt(let why): return fail(.corruptMessage, why)
            case .invalid(let why): return fail(.invalidRecord, why)
            case .tooLarge(let why): return fail(.messageTooLarge, why)
            case .unsupportedCodec(let why): return fail(.unsupportedCompressionType, why)
            }
        }
        if batch.isTransactional { return fail(.invalidRecord, "transactional batches are not served") }
        var records: [Record] = []
        records.reserveCapacity(batch.records.count)
        for record in batch.records {
            if let reserved = record.headers.first(where: { $0.key.hasPrefix(ForeignBytes.reservedPrefix) }) {
                return fail(.invalidRecord, "header names starting with NUL are the broker's (\(reserved.key.debugDescription))")
            }
            var headers = record.headers.map { RecordHeader(key: $0.key, value: $0.value) }
            let keyIsBytes = record.key.map { String(validating: $0, as: UTF8.self) == nil } ?? false
            let valueIsBytes = record.value.map { !RawJSON.isValid($0) } ?? false
            if let marker = ForeignBytes.marker(keyIsBytes: keyIsBytes, valueIsBytes: valueIsBytes) {
                headers.append(RecordHeader(key: ForeignBytes.headerKey, value: marker))
            }
            records.append(Record(timestamp: record.timestamp, key: record.key, value: record.value, headers: headers))
        }
        let producer = batch.producerId >= 0 ? ProducerStamp(producerId: batch.producerId, baseSequence: batch.baseSequence) : nil
        let appendTime = topic.settings.timestampType == .logAppendTime ? broker.now() : -1
        do {
            let result = try await broker.append(topic: name, partition: Int(data.index), records: records, producer: producer)
            var response = ProduceResponse.TopicProduceResponse.PartitionProduceResponse()
            response.index = data.index
            response.baseOffset = result.baseOffset
            response.logAppendTimeMs = appendTime
            response.logStartOffset = log.logStartOffset
            return response
        } catch {
            return fail(Self.errorCode(for: error), "\(error)")
        }
    }

    // MARK: Fetch

    /// Reads every asked partition from its offset. Until `minBytes` are there, waits (up to
    /// `maxWaitMs`) for any asked partition's high watermark to move, then reads again. Fetch
    /// sessions (KIP-227) are not kept: the response's session id 0 keeps clients sessionless.
    func fetch(_ request: FetchRequest, version: Int16) async -> FetchResponse {
        let wait = min(Duration.milliseconds(max(0, request.maxWaitMs)), settings.maxFetchWait)
        let deadline = ContinuousClock.now + wait
        while true {
            let (response, bytes, waiting) = readForFetch(request)
            let remaining = ContinuousClock.now.duration(to: deadline)
            if bytes >= Int(request.minBytes) || waiting.isEmpty || remaining <= .zero || Task.isCancelled { return response }
            await Self.waitForAny(waiting, timeout: remaining)
        }
    }

    /// One pass over the asked partitions: the response, the record bytes in it, and for each
    /// partition read up to its end, the offset whose arrival would make a new pass worth it.
    private func readForFetch(_ request: FetchRequest) -> (FetchResponse, Int, [(PartitionLog, Int64)]) {
        var response = FetchResponse()
        var budget = request.maxBytes > 0 ? Int(request.maxBytes) : Int.max
        var total = 0
        var waiting: [(PartitionLog, Int64)] = []
        response.responses = request.topics.map { topic in
            var topicResponse = FetchResponse.FetchableTopicResponse()
            topicResponse.topic = topic.topic
            topicResponse.partitions = topic.partitions.map { partition in
                var data = FetchResponse.FetchableTopicResponse.PartitionData()
                data.partitionIndex = partition.partition
                data.abortedTransactions = []
                data.records = []
                do {
                    let log = try broker.topic(topic.topic).log(Int(partition.partition))
                    // KIP-74: the first partition with records returns at least one whatever the
                    // limits; after that, what the request-wide budget leaves.
                    let limit = min(Int(max(partition.partitionMaxBytes, 0)), budget)
                    guard limit > 0 || total == 0 else {
                        data.highWatermark = log.highWatermark
                        data.lastStableOffset = data.highWatermark
                        data.logStartOffset = log.logStartOffset
                        return data
                    }
                    let read = try log.read(from: partition.fetchOffset, maxRecords: Int.max, maxBytes: max(limit, 1))
                    data.highWatermark = read.highWatermark
                    data.lastStableOffset = read.highWatermark
                    data.logStartOffset = read.logStartOffset
                    if read.records.isEmpty {
                        if partition.fetchOffset >= read.highWatermark { waiting.append((log, read.highWatermark)) }
                    } else {
                        let encoded = Self.encodeBatch(read.records)
                        data.records = encoded
                        total += encoded.count
                        budget -= encoded.count
                    }
                } catch {
                    data.errorCode = Self.errorCode(for: error).rawValue
                    if case StorageError.offsetOutOfRange(_, let start, let end) = error {
                        data.highWatermark = end
                        data.logStartOffset = start
                        data.lastStableOffset = end
                    } else {
                        data.highWatermark = -1
                        data.lastStableOffset = -1
                        data.logStartOffset = -1
                    }
                }
                return data
            }
            return topicResponse
        }
        return (response, total, waiting)
    }

    /// Stored records as one uncompressed record batch (always allowed in a Fetch response),
    /// offsets as stored: compaction's gaps stay gaps, as in Kafka's compacted batches.
    static func encodeBatch(_ records: [Record]) -> [UInt8] {
        var batch = KafkaRecordBatch()
        batch.baseOffset = records[0].offset
        batch.lastOffsetDelta = Int32(truncatingIfNeeded: records[records.count - 1].offset - records[0].offset)
        batch.baseTimestamp = records[0].timestamp
        batch.maxTimestamp = records.reduce(Int64.min) { max($0, $1.timestamp) }
        batch.records = records.map { record in
            KafkaRecord(
                offset: record.offset, timestamp: record.timestamp, key: record.key, value: record.value,
                headers: record.headers.compactMap { $0.key == ForeignBytes.headerKey ? nil : KafkaRecord.Header(key: $0.key, value: $0.value) })
        }
        return batch.encoded()
    }

    /// Returns once any of the partitions has a record at its offset, or after `timeout`.
    static func waitForAny(_ partitions: [(PartitionLog, Int64)], timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            for (log, offset) in partitions {
                group.addTask { await log.waitForRecord(at: offset) }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
