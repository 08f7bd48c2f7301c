import Checksums

/// A header of a record: a string name and bytes (or nil).
public struct RecordHeader: Hashable, Sendable {
    public var key: String
    public var value: [UInt8]?

    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }
}

/// A record as stored and as read back: the broker never re-parses its key or value.
public struct Record: Hashable, Sendable {
    public var offset: Int64
    /// Milliseconds since the Unix epoch, UTC.
    public var timestamp: Int64
    public var key: [UInt8]?
    /// Nil is a tombstone: on a compacted log it deletes the key.
    public var value: [UInt8]?
    public var headers: [RecordHeader]

    public init(offset: Int64 = 0, timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [RecordHeader] = []) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// Bytes this record takes inside a batch.
    public var encodedSize: Int {
        RecordBatch.recordOverhead + (key?.count ?? 0) + (value?.count ?? 0)
            + headers.reduce(0) { $0 + 6 + $1.key.utf8.count + ($1.value?.count ?? 0) }
    }
}

/// Who wrote a batch, for idempotent producers: a producer id and the sequence number of the
/// batch's first record in its partition. Records of the batch take consecutive sequences.
public struct ProducerStamp: Hashable, Sendable {
    public var producerId: Int64
    public var baseSequence: Int32

    public init(producerId: Int64, baseSequence: Int32) {
        self.producerId = producerId
        self.baseSequence = baseSequence
    }
}

/// The unit of storage: records written together, framed with their length and checksummed.
///
/// Layout (big-endian), modelled on Kafka's v2 record batch:
///
///     0  baseOffset       Int64   offset of the first record; patched at append time
///     8  batchLength      Int32   bytes after this field
///     12 magic            UInt8   format version, 1
///     13 crc              UInt32  CRC-32C of every byte from lastOffsetDelta to the end,
///                                 followed by the 8 bytes of baseOffset
///     17 lastOffsetDelta  Int32   last offset - baseOffset (kept when compaction drops records)
///     21 firstTimestamp   Int64   ms
///     29 maxTimestamp     Int64   ms
///     37 producerId       Int64   -1 when not idempotent
///     45 baseSequence     Int32   -1 when not idempotent
///     49 recordCount      Int32
///     53 records
///
/// and each record:
///
///     recordLength UInt32 (bytes after it), offsetDelta UInt32, timestampDelta Int64,
///     key (Int32 length, -1 = null, bytes), value (same), headerCount UInt32,
///     per header: key (UInt16 length, UTF-8), value (Int32 length, -1 = null, bytes)
///
/// The checksum covers the base offset last, so the log assigns offsets without checksumming the
/// records again: it continues the records' checksum with the 8 offset bytes.
public struct RecordBatch: Hashable, Sendable {
    public static let headerSize = 53
    /// The longest header name a record can hold: its length is a UInt16.
    public static let maxHeaderNameBytes = Int(UInt16.max)
    public static let magic: UInt8 = 1
    static let recordOverhead = 4 + 4 + 8 + 4 + 4 + 4
    static let crcStart = 17

    public var baseOffset: Int64
    public var lastOffsetDelta: Int32
    public var firstTimestamp: Int64
    public var maxTimestamp: Int64
    public var producer: ProducerStamp?
    /// Records with their absolute offsets.
    public var records: [Record]

    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset + 1 }

    /// A batch of new records, offsets 0..<n relative to a base offset the log assigns later.
    public init(records: [Record], producer: ProducerStamp? = nil) {
        precondition(!records.isEmpty, "a batch holds at least one record")
        var numbered = records
        for i in numbered.indices { numbered[i].offset = Int64(i) }
        self.init(baseOffset: 0, lastOffsetDelta: Int32(records.count - 1), records: numbered, producer: producer)
    }

    public init(baseOffset: Int64, lastOffsetDelta: Int32, records: [Record], producer: ProducerStamp?) {
        self.baseOffset = baseOffset
        self.lastOffsetDelta = lastOffsetDelta
        self.records = records
        self.producer = producer
        firstTimestamp = records.first?.timestamp ?? 0
        maxTimestamp = records.map(\.timestamp).max() ?? 0
    }

    /// The batch's bytes, ready to write; the records' offsets are taken relative to `baseOffset`.
    public func encoded() -> EncodedBatch {
        let size = Self.headerSize + records.reduce(0) { $0 + $1.encodedSize }
        let bytes = ByteWriter.bytes(count: size) { writer in
            writer.put(baseOffset)
            writer.put(Int32(size - 12))
            writer.put(Self.magic)
            writer.put(UInt32(0))
            writer.put(lastOffsetDelta)
            writer.put(firstTimestamp)
            writer.put(maxTimestamp)
            writer.put(producer?.producerId ?? -1)
            writer.put(producer?.baseSequence ?? -1)
            writer.put(Int32(records.count))
            for record in records {
                let start = writer.position
                writer.put(UInt32(record.encodedSize - 4))
                writer.put(UInt32(record.offset - baseOffset))
                writer.put(record.timestamp - firstTimestamp)
                writer.putNullable(record.key)
                writer.putNullable(record.value)
                writer.put(UInt32(record.headers.count))
                for header in record.headers {
                    var name = header.key
                    name.withUTF8 { name in
                        writer.put(UInt16(name.count))
                        writer.put(UnsafeRawBufferPointer(name))
                    }
                    writer.putNullable(header.value)
                }
                precondition(writer.position - start == record.encodedSize, "a record's size is not its encodedSize")
            }
        }
        let bodyChecksum = CRC32C.checksum(bytes[Self.crcStart...])
        // Taken, not shared: `setBaseOffset` then writes into the one copy (sharing it with the
        // writer copied the whole batch, 25 KB for 100 records of 200 bytes).
        var encoded = EncodedBatch(bytes: consume bytes, bodyChecksum: bodyChecksum)
        encoded.setBaseOffset(baseOffset)
        return encoded
    }

    static func checksum(body: ArraySlice<UInt8>, baseOffset: Int64) -> UInt32 {
        withUnsafeBytes(of: baseOffset.bigEndian) { CRC32C.checksum($0, continuing: CRC32C.checksum(body)) }
    }

    /// Decodes a whole batch after checking its frame and checksum.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(BatchDecodingError) -> RecordBatch {
        try decode(bytes, checksumVerified: false)
    }

    /// `checksumVerified`: the caller already checked the CRC (the log's reads check every batch
    /// they walk over, not only the ones they decode), so it is not computed twice.
    static func decode(_ bytes: ArraySlice<UInt8>, checksumVerified: Bool) throws(BatchDecodingError) -> RecordBatch {
        let header = try BatchHeader(bytes)
        guard bytes.count >= header.totalSize else { throw .truncated }
        if !checksumVerified {
            let body = bytes[(bytes.startIndex + crcStart)..<(bytes.startIndex + header.totalSize)]
            guard checksum(body: body, baseOffset: header.baseOffset) == header.crc else { throw .checksumMismatch }
        }
        do {
            let records = try ByteReader.reading(bytes[(bytes.startIndex + headerSize)..<(bytes.startIndex + header.totalSize)]) { reader in
                try decodeRecords(&reader, header)
            }
            var batch = RecordBatch(
                baseOffset: header.baseOffset, lastOffsetDelta: header.lastOffsetDelta, records: records,
                producer: header.producer)
            batch.firstTimestamp = header.firstTimestamp
            batch.maxTimestamp = header.maxTimestamp
            return batch
        } catch let error as BatchDecodingError {
            throw error
        } catch {
            throw .malformed("a record runs past the end of its batch")
        }
    }

    private static func decodeRecords(_ reader: inout ByteReader, _ header: BatchHeader) throws -> [Record] {
        var records: [Record] = []
        records.reserveCapacity(Int(header.recordCount))
        for _ in 0..<header.recordCount {
            let length: UInt32 = try reader.get()
            var field = try reader.reader(Int(length))
            let offsetDelta: UInt32 = try field.get()
            let timestampDelta: Int64 = try field.get()
            let key = try field.getNullable()
            let value = try field.getNullable()
            let headerCount: UInt32 = try field.get()
            guard headerCount <= UInt32(field.remaining) else { throw ByteReader.Truncated() }
            var headers: [RecordHeader] = []
            for _ in 0..<headerCount {
                let nameLength: UInt16 = try field.get()
                let name = String(decoding: try field.take(Int(nameLength)), as: UTF8.self)
                headers.append(RecordHeader(key: name, value: try field.getNullable()))
            }
            records.append(
                Record(
                    offset: header.baseOffset + Int64(offsetDelta), timestamp: header.firstTimestamp + timestampDelta,
                    key: key, value: value, headers: headers))
        }
        guard reader.remaining == 0 else { throw BatchDecodingError.malformed("\(reader.remaining) bytes after the last record") }
        return records
    }
}

/// A batch's bytes and the checksum of its body, so that setting the base offset costs 8 bytes of CRC.
public struct EncodedBatch: Sendable {
    public private(set) var bytes: [UInt8]
    let bodyChecksum: UInt32

    /// Writes the base offset and the checksum that covers it.
    mutating func setBaseOffset(_ baseOffset: Int64) {
        withUnsafeBytes(of: baseOffset.bigEndian) { raw in
            for i in 0..<8 { bytes[i] = raw[i] }
        }
        let crc = withUnsafeBytes(of: baseOffset.bigEndian) { CRC32C.checksum($0, continuing: bodyChecksum) }
        withUnsafeBytes(of: crc.bigEndian) { raw in
            for i in 0..<4 { bytes[13 + i] = raw[i] }
        }
    }
}

/// Why bytes are not a valid batch.
public enum BatchDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the frame says: a torn write at the end of a log.
    case truncated
    case checksumMismatch
    case malformed(String)

    public var description: String {
        switch self {
        case .truncated: return "the batch is cut short"
        case .checksumMismatch: return "CRC-32C mismatch"
        case .malformed(let reason): return reason
        }
    }
}

/// The fixed-size front of a batch: enough to walk a log file batch by batch without decoding records.
public struct BatchHeader: Hashable, Sendable {
    public var baseOffset: Int64
    /// Header plus records, in bytes.
    public var totalSize: Int
    public var crc: UInt32
    public var lastOffsetDelta: Int32
    public var firstTimestamp: Int64
    public var maxTimestamp: Int64
    public var producer: ProducerStamp?
    public var recordCount: Int32

    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset + 1 }

    /// The largest batch a log accepts on recovery; a length field above it is garbage, not a batch.
    public static let maximumSize = 64 << 20

    public init(_ bytes: ArraySlice<UInt8>) throws(BatchDecodingError) {
        guard bytes.count >= RecordBatch.headerSize else { throw .truncated }
        do {
            self = try ByteReader.reading(bytes) { reader in try BatchHeader(reading: &reader) }
        } catch let error as BatchDecodingError {
            throw error
        } catch {
            throw .truncated
        }
    }

    private init(reading reader: inout ByteReader) throws {
        baseOffset = try reader.get()
        let length: Int32 = try reader.get()
        let magic: UInt8 = try reader.get()
        crc = try reader.get()
        lastOffsetDelta = try reader.get()
        firstTimestamp = try reader.get()
        maxTimestamp = try reader.get()
        let producerId: Int64 = try reader.get()
        let baseSequence: Int32 = try reader.get()
        recordCount = try reader.get()
        guard magic == RecordBatch.magic else { throw BatchDecodingError.malformed("unknown format version \(magic)") }
        guard length >= Int32(RecordBatch.headerSize - 12), Int(length) + 12 <= Self.maximumSize else {
            throw BatchDecodingError.malformed("impossible batch length \(length)")
        }
        guard baseOffset >= 0, lastOffsetDelta >= 0, recordCount >= 0 else {
            throw BatchDecodingError.malformed("negative offset or count")
        }
        totalSize = Int(length) + 12
        producer = producerId >= 0 ? ProducerStamp(producerId: producerId, baseSequence: baseSequence) : nil
    }
}
