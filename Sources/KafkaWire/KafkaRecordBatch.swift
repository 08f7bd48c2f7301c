import Checksums

/// One record of a Kafka record batch, with its offset and timestamp made absolute.
public struct KafkaRecord: Hashable, Sendable {
    public struct Header: Hashable, Sendable {
        public var key: String
        public var value: [UInt8]?

        public init(key: String, value: [UInt8]?) {
            self.key = key
            self.value = value
        }
    }

    public var offset: Int64
    public var timestamp: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]

    public init(offset: Int64, timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [Header] = []) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// What is wrong with a record batch a client sent, in the words of Kafka's error codes.
public enum RecordBatchError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Bytes that are not a whole batch or fail the CRC: CORRUPT_MESSAGE.
    case corrupt(String)
    /// A well-formed batch that breaks a rule (counts, offsets, control batches): INVALID_RECORD.
    case invalid(String)
    /// Compressed records that expand past the limit: MESSAGE_TOO_LARGE.
    case tooLarge(String)
    /// A codec the request's version may not use (zstd below Produce v7), or an unknown one.
    case unsupportedCodec(String)

    public var description: String {
        switch self {
        case .corrupt(let why), .invalid(let why), .tooLarge(let why), .unsupportedCodec(let why): return why
        }
    }
}

/// Kafka's record batch, magic 2 (KIP-98): the unit producers send and consumers receive.
///
///     baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32
///     attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64
///     producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records…
///
/// The CRC-32C covers everything from `attributes` on; when the codec is not none, only the
/// records are compressed.
public struct KafkaRecordBatch: Hashable, Sendable {
    /// Bytes from the start of a batch to the end of `recordCount`.
    public static let headerSize = 61
    static let magic: Int8 = 2

    public var baseOffset: Int64 = 0
    public var partitionLeaderEpoch: Int32 = -1
    public var attributes: Int16 = 0
    public var lastOffsetDelta: Int32 = 0
    public var baseTimestamp: Int64 = 0
    public var maxTimestamp: Int64 = 0
    public var producerId: Int64 = -1
    public var producerEpoch: Int16 = -1
    public var baseSequence: Int32 = -1
    public var records: [KafkaRecord] = []

    public init() {}

    public var codec: CompressionCodec { CompressionCodec(rawValue: attributes & 0x7) ?? .none }
    /// Timestamps are the broker's (LogAppendTime) rather than the producer's.
    public var isLogAppendTime: Bool { attributes & 0x8 != 0 }
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    public var isControl: Bool { attributes & 0x20 != 0 }

    /// Reads every batch in `bytes` (a Produce partition's records or a Fetch reply's), checking
    /// each CRC, decompressing with output bounded by `decompressionLimit`.
    public static func decodeAll(_ bytes: ArraySlice<UInt8>, decompressionLimit: Int) throws(RecordBatchError) -> [KafkaRecordBatch] {
        var batches: [KafkaRecordBatch] = []
        var reader = KafkaReader(bytes)
        while reader.remaining > 0 {
            batches.append(try decode(&reader, decompressionLimit: decompressionLimit))
        }
        return batches
    }

    static func decode(_ reader: inout KafkaReader, decompressionLimit: Int) throws(RecordBatchError) -> KafkaRecordBatch {
        do {
            return try decodeOrThrow(&reader, decompressionLimit: decompressionLimit)
        } catch let error as KafkaDecodeError {
            throw .corrupt("a record batch does not parse: \(error)")
        } catch let error as RecordBatchError {
            throw error
        } catch {
            throw .corrupt("\(error)")
        }
    }

    private static func decodeOrThrow(_ reader: inout KafkaReader, decompressionLimit: Int) throws -> KafkaRecordBatch {
        guard reader.remaining >= 12 else { throw RecordBatchError.corrupt("\(reader.remaining) bytes are not a record batch header") }
        var batch = KafkaRecordBatch()
        batch.baseOffset = try reader.readInt64()
        let length = Int(try reader.readInt32())
        guard length >= headerSize - 12 else { throw RecordBatchError.corrupt("a batch length of \(length) is below the header's") }
        guard length <= reader.remaining else {
            throw RecordBatchError.corrupt("a batch of \(length) bytes where \(reader.remaining) remain")
        }
        var body = KafkaReader(try reader.readSlice(count: length))
        batch.partitionLeaderEpoch = try body.readInt32()
        let magic = try body.readInt8()
        guard magic == Self.magic else {
            throw RecordBatchError.corrupt("magic \(magic): only record batches v2 (magic 2) are accepted")
        }
        let crc = try body.readUInt32()
        let covered = try body.readSlice(count: body.remaining)
        let actual = CRC32C.checksum(covered)
        guard actual == crc else {
            throw RecordBatchError.corrupt("CRC-32C mismatch: the batch says \(crc), its bytes give \(actual)")
        }
        var fields = KafkaReader(covered)
        batch.attributes = try fields.readInt16()
        batch.lastOffsetDelta = try fields.readInt32()
        batch.baseTimestamp = try fields.readInt64()
        batch.maxTimestamp = try fields.readInt64()
        batch.producerId = try fields.readInt64()
        batch.producerEpoch = try fields.readInt16()
        batch.baseSequence = try fields.readInt32()
        let count = Int(try fields.readInt32())
        guard count >= 0 else { throw RecordBatchError.corrupt("a record count of \(count)") }
        guard let codec = CompressionCodec(rawValue: batch.attributes & 0x7) else {
            throw RecordBatchError.unsupportedCodec("compression codec \(batch.attributes & 0x7) is not one of Kafka's")
        }
        let payload = try fields.readSlice(count: fields.remaining)
        let records: [UInt8]
        do {
            records = try Compression.decompress(payload, codec: codec, limit: decompressionLimit)
        } catch {
            if case .tooLarge = error { throw RecordBatchError.tooLarge(error.description) }
            throw RecordBatchError.corrupt(error.description)
        }
        // Each record takes at least 7 bytes: a count beyond that is a lie, refused before
        // anything is reserved for it.
        guard count <= records.count / 7 + 1 else {
            throw RecordBatchError.corrupt("\(count) records claimed in \(records.count) bytes")
        }
        var recordReader = KafkaReader(records)
        batch.records.reserveCapacity(count)
        for _ in 0..<count {
            batch.records.append(try decodeRecord(&recordReader, batch: batch))
        }
        guard recordReader.remaining == 0 else {
            throw RecordBatchError.corrupt("\(recordReader.remaining) bytes after the batch's \(count) records")
        }
        return batch
    }

    private static func decodeRecord(_ reader: inout KafkaReader, batch: KafkaRecordBatch) throws -> KafkaRecord {
        let length = Int(try reader.readVarint())
        guard length >= 0 else { throw RecordBatchError.corrupt("a record length of \(length)") }
        var record = KafkaReader(try reader.readSlice(count: length))
        _ = try record.readInt8()  // attributes: unused
        let timestampDelta = try record.readVarlong()
        let offsetDelta = try record.readVarint()
        let key = try readVarintBytes(&record)
        let value = try readVarintBytes(&record)
        let headerCount = Int(try record.readVarint())
        guard headerCount >= 0, headerCount <= record.remaining else {
            throw RecordBatchError.corrupt("a header count of \(headerCount) in \(record.remaining) bytes")
        }
        var headers: [KafkaRecord.Header] = []
        headers.reserveCapacity(headerCount)
        for _ in 0..<headerCount {
            guard let keyBytes = try readVarintBytes(&record) else { throw RecordBatchError.corrupt("a header with a null key") }
            guard let key = String(validating: keyBytes, as: UTF8.self) else {
                throw RecordBatchError.corrupt("a header key that is not UTF-8")
            }
            headers.append(.init(key: key, value: try readVarintBytes(&record)))
        }
        guard record.remaining == 0 else { throw RecordBatchError.corrupt("\(record.remaining) bytes after a record's headers") }
        return KafkaRecord(
            offset: batch.baseOffset &+ Int64(offsetDelta), timestamp: batch.baseTimestamp &+ timestampDelta, key: key, value: value,
            headers: headers)
    }

    private static func readVarintBytes(_ reader: inout KafkaReader) throws -> [UInt8]? {
        let length = Int(try reader.readVarint())
        if length == -1 { return nil }
        guard length >= 0 else { throw RecordBatchError.corrupt("a length of \(length)") }
        return try reader.readBytes(count: length)
    }

    /// Checks what Kafka's log validator checks of a batch a producer sent (one batch per
    /// partition, v2): offsets 0…n-1, a count that matches, no control batch, a sequence when
    /// there is a producer id.
    public func validateForProduce() throws(RecordBatchError) {
        guard !records.isEmpty else { throw .invalid("a batch without records") }
        guard Int(lastOffsetDelta) + 1 == records.count else {
            throw .invalid("lastOffsetDelta \(lastOffsetDelta) does not match \(records.count) records")
        }
        for (index, record) in records.enumerated() where record.offset != baseOffset &+ Int64(index) {
            throw .invalid("record \(index) has offset delta \(record.offset &- baseOffset) (expected \(index))")
        }
        guard !isControl else { throw .invalid("producers may not send control batches") }
        if producerId >= 0 && baseSequence < 0 { throw .invalid("producer id \(producerId) with no base sequence") }
    }

    /// The batch as bytes, records compressed with `codec`; `baseOffset` and `lastOffsetDelta` as set.
    public func encoded(codec: CompressionCodec = .none) -> [UInt8] {
        var records = KafkaWriter(capacity: 64 * self.records.count)
        for record in self.records {
            var body = KafkaWriter(capacity: 32 + (record.key?.count ?? 0) + (record.value?.count ?? 0))
            body.writeInt8(0)
            body.writeVarlong(record.timestamp &- baseTimestamp)
            body.writeVarint(Int32(truncatingIfNeeded: record.offset &- baseOffset))
            Self.writeVarintBytes(record.key, into: &body)
            Self.writeVarintBytes(record.value, into: &body)
            body.writeVarint(Int32(record.headers.count))
            for header in record.headers {
                Self.writeVarintBytes(Array(header.key.utf8), into: &body)
                Self.writeVarintBytes(header.value, into: &body)
            }
            records.writeVarint(Int32(body.bytes.count))
            records.writeRaw(body.bytes)
        }
        let payload = Compression.compress(records.bytes, codec: codec)
        var covered = KafkaWriter(capacity: 40 + payload.count)
        covered.writeInt16((attributes & ~0x7) | codec.rawValue)
        covered.writeInt32(lastOffsetDelta)
        covered.writeInt64(baseTimestamp)
        covered.writeInt64(maxTimestamp)
        covered.writeInt64(producerId)
        covered.writeInt16(producerEpoch)
        covered.writeInt32(baseSequence)
        covered.writeInt32(Int32(self.records.count))
        covered.writeRaw(payload)
        var batch = KafkaWriter(capacity: 21 + covered.bytes.count)
        batch.writeInt64(baseOffset)
        batch.writeInt32(Int32(9 + covered.bytes.count))
        batch.writeInt32(partitionLeaderEpoch)
        batch.writeInt8(Self.magic)
        batch.writeUInt32(CRC32C.checksum(covered.bytes))
        batch.writeRaw(covered.bytes)
        return batch.bytes
    }

    private static func writeVarintBytes(_ bytes: [UInt8]?, into writer: inout KafkaWriter) {
        guard let bytes else {
            writer.writeVarint(-1)
            return
        }
        writer.writeVarint(Int32(bytes.count))
        writer.writeRaw(bytes)
    }
}
