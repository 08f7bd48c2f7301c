import Checksums
import Testing

@testable import LogStorage

@Suite struct RecordBatchTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        Array("123456789".utf8).withUnsafeBytes { #expect(CRC32C.tableChecksum($0) == 0xE306_9283) }
    }

    /// The CPU's instruction (when this machine has one) and the tables agree on every length
    /// around the 8-byte steps, at every alignment, and when continuing a running checksum.
    @Test func crc32cInstructionAndTablesAgree() {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &random) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for count in 0..<(all.count - start) {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
                    #expect(CRC32C.checksum(slice) == CRC32C.tableChecksum(slice))
                    let split = count / 3
                    let head = UnsafeRawBufferPointer(rebasing: slice[0..<split])
                    let tail = UnsafeRawBufferPointer(rebasing: slice[split...])
                    #expect(CRC32C.checksum(tail, continuing: CRC32C.checksum(head)) == CRC32C.tableChecksum(slice))
                }
            }
        }
        print("crc32c: \(CRC32C.usesHardware ? "the CPU's instruction" : "tables only, no instruction on this CPU")")
    }

    @Test func aBatchRoundTripsWithOffsetsKeysHeadersAndTombstones() throws {
        var batch = RecordBatch(
            records: [
                record("k1", #"{"a":1}"#, timestamp: 10, headers: [RecordHeader(key: "type", value: Array("Opened".utf8))]),
                record(nil, "[]", timestamp: 12),
                record("k1", nil, timestamp: 11, headers: [RecordHeader(key: "empty", value: nil)]),
            ], producer: ProducerStamp(producerId: 7, baseSequence: 3))
        var encoded = batch.encoded()
        encoded.setBaseOffset(1000)
        let decoded = try RecordBatch.decode(encoded.bytes[...])
        batch.baseOffset = 1000
        #expect(decoded.baseOffset == 1000)
        #expect(decoded.lastOffset == 1002)
        #expect(decoded.records.map(\.offset) == [1000, 1001, 1002])
        #expect(decoded.records.map(\.keyText) == ["k1", nil, "k1"])
        #expect(decoded.records.map(\.valueText) == [#"{"a":1}"#, "[]", nil])
        #expect(decoded.records.map(\.timestamp) == [10, 12, 11])
        #expect(decoded.records[0].headers == [RecordHeader(key: "type", value: Array("Opened".utf8))])
        #expect(decoded.records[2].headers == [RecordHeader(key: "empty", value: nil)])
        #expect(decoded.maxTimestamp == 12)
        #expect(decoded.producer == ProducerStamp(producerId: 7, baseSequence: 3))
    }

    /// The bytes a batch is stored as are the layout `RecordBatch` documents, byte for byte (logs
    /// written by earlier builds must read, and later builds must write what these read): built
    /// here field by field from that layout, independently of the encoder.
    @Test func aBatchIsStoredInTheDocumentedLayout() {
        var expected: [UInt8] = []
        func be<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.bigEndian) { expected += $0 } }
        func nullable(_ bytes: [UInt8]?) {
            guard let bytes else { return be(Int32(-1)) }
            be(Int32(bytes.count))
            expected += bytes
        }
        let records = [
            record("k1", #"{"a":1}"#, timestamp: 1_700_000_000_010, headers: [RecordHeader(key: "type", value: Array("Opened".utf8))]),
            record(nil, "[]", timestamp: 1_700_000_000_012),
            record("k1", nil, timestamp: 1_700_000_000_011, headers: [RecordHeader(key: "é", value: nil)]),
        ]
        var encoded = RecordBatch(records: records, producer: ProducerStamp(producerId: 7, baseSequence: 3)).encoded()
        encoded.setBaseOffset(1000)

        var body: [UInt8] = []
        swap(&body, &expected)
        for (i, record) in records.enumerated() {
            var fields: [UInt8] = []
            swap(&fields, &expected)
            be(UInt32(i))
            be(record.timestamp - 1_700_000_000_010)
            nullable(record.key)
            nullable(record.value)
            be(UInt32(record.headers.count))
            for header in record.headers {
                be(UInt16(header.key.utf8.count))
                expected += Array(header.key.utf8)
                nullable(header.value)
            }
            swap(&fields, &expected)
            be(UInt32(fields.count))
            expected += fields
        }
        let recordBytes = expected
        expected = body
        be(Int32(2))  // lastOffsetDelta
        be(Int64(1_700_000_000_010))  // firstTimestamp
        be(Int64(1_700_000_000_012))  // maxTimestamp
        be(Int64(7))  // producerId
        be(Int32(3))  // baseSequence
        be(Int32(3))  // recordCount
        expected += recordBytes
        let afterCRC = expected
        expected = []
        be(Int64(1000))
        be(Int32(afterCRC.count + 5))  // magic and crc, then the rest
        expected.append(1)
        be(CRC32C.checksum(afterCRC + withUnsafeBytes(of: Int64(1000).bigEndian) { Array($0) }))
        expected += afterCRC
        #expect(encoded.bytes == expected)
    }

    @Test func everyFlippedBitIsCaughtAndEveryCutIsTruncated() throws {
        let bytes = RecordBatch(records: [record("key", #"{"amount":100}"#)]).encoded().bytes
        for index in 0..<bytes.count {
            var damaged = bytes
            damaged[index] ^= 0x10
            #expect(throws: BatchDecodingError.self) { try RecordBatch.decode(damaged[...]) }
        }
        for cut in 0..<bytes.count {
            #expect(throws: BatchDecodingError.self) { try RecordBatch.decode(bytes[..<cut]) }
        }
    }
}
