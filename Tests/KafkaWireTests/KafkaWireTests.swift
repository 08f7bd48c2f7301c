import Checksums
import Foundation
import KafkaMessages
import KafkaWire
import Testing

/// Vectors written by kafka-python 3.0.12 (`make_vectors.py` beside this file): our codecs must
/// read what an independent client writes and write it back byte for byte.
struct Vectors: Decodable {
    struct Message: Decodable {
        var name: String
        var version: Int16
        var hex: String
    }

    struct Batch: Decodable {
        var codec: String
        var hex: String
    }

    var messages: [Message]
    var batches: [Batch]

    static let loaded: Vectors = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/kafka-python-vectors.json")
        return try! JSONDecoder().decode(Vectors.self, from: Data(contentsOf: path))
    }()
}

func roundTrip<Message: KafkaMessage & Equatable>(_: Message.Type, _ bytes: [UInt8], version: Int16) throws -> Message {
    let message = try Message(bytes: bytes[...], version: version)
    #expect(message.encoded(version: version) == bytes, "\(Message.self) v\(version) does not encode back to kafka-python's bytes")
    return message
}

@Suite struct KafkaMessagesTests {
    @Test func everyVectorDecodesAndEncodesBackByteForByte() throws {
        for vector in Vectors.loaded.messages {
            let bytes = Hex.bytes(vector.hex)!
            switch vector.name {
            case "ApiVersionsRequest": _ = try roundTrip(ApiVersionsRequest.self, bytes, version: vector.version)
            case "MetadataRequest": _ = try roundTrip(MetadataRequest.self, bytes, version: vector.version)
            case "ProduceRequest": _ = try roundTrip(ProduceRequest.self, bytes, version: vector.version)
            case "FetchRequest": _ = try roundTrip(FetchRequest.self, bytes, version: vector.version)
            case "ListOffsetsRequest": _ = try roundTrip(ListOffsetsRequest.self, bytes, version: vector.version)
            case "InitProducerIdRequest": _ = try roundTrip(InitProducerIdRequest.self, bytes, version: vector.version)
            case "CreateTopicsRequest": _ = try roundTrip(CreateTopicsRequest.self, bytes, version: vector.version)
            case "FindCoordinatorRequest": _ = try roundTrip(FindCoordinatorRequest.self, bytes, version: vector.version)
            case "JoinGroupRequest": _ = try roundTrip(JoinGroupRequest.self, bytes, version: vector.version)
            case "SyncGroupRequest": _ = try roundTrip(SyncGroupRequest.self, bytes, version: vector.version)
            case "HeartbeatRequest": _ = try roundTrip(HeartbeatRequest.self, bytes, version: vector.version)
            case "LeaveGroupRequest": _ = try roundTrip(LeaveGroupRequest.self, bytes, version: vector.version)
            case "OffsetCommitRequest": _ = try roundTrip(OffsetCommitRequest.self, bytes, version: vector.version)
            case "OffsetFetchRequest": _ = try roundTrip(OffsetFetchRequest.self, bytes, version: vector.version)
            case "MetadataResponse": _ = try roundTrip(MetadataResponse.self, bytes, version: vector.version)
            case "ProduceResponse": _ = try roundTrip(ProduceResponse.self, bytes, version: vector.version)
            case "FetchResponse": _ = try roundTrip(FetchResponse.self, bytes, version: vector.version)
            default: Issue.record("no test for \(vector.name)")
            }
        }
    }

    @Test func fieldsReadAsKafkaPythonWroteThem() throws {
        let vectors = Dictionary(grouping: Vectors.loaded.messages) { "\($0.name) v\($0.version)" }
        func bytes(_ key: String) -> [UInt8] { Hex.bytes(vectors[key]![0].hex)! }
        let metadata = try MetadataRequest(bytes: bytes("MetadataRequest v12")[...], version: 12)
        #expect(metadata.topics?.map(\.name) == ["OnNewOrder"])
        #expect(metadata.allowAutoTopicCreation == false)
        #expect(try MetadataRequest(bytes: bytes("MetadataRequest v4")[...], version: 4).topics == nil)
        let produce = try ProduceRequest(bytes: bytes("ProduceRequest v9")[...], version: 9)
        #expect(produce.acks == -1 && produce.timeoutMs == 30000 && produce.transactionalId == nil)
        #expect(produce.topicData.map(\.name) == ["OnNewOrder"])
        #expect(produce.topicData[0].partitionData[0].index == 2)
        let fetch = try FetchRequest(bytes: bytes("FetchRequest v12")[...], version: 12)
        #expect(fetch.maxWaitMs == 500 && fetch.sessionEpoch == -1)
        #expect(fetch.topics[0].partitions[0].fetchOffset == 42)
        let join = try JoinGroupRequest(bytes: bytes("JoinGroupRequest v5")[...], version: 5)
        #expect(join.groupId == "workers" && join.memberId == "" && join.protocols.map(\.name) == ["range"])
        #expect(join.sessionTimeoutMs == 45000 && join.rebalanceTimeoutMs == 300_000)
        let commit = try OffsetCommitRequest(bytes: bytes("OffsetCommitRequest v8")[...], version: 8)
        #expect(commit.topics[0].partitions[0].committedOffset == 41 && commit.topics[0].partitions[0].committedMetadata == "m")
        #expect(try FindCoordinatorRequest(bytes: bytes("FindCoordinatorRequest v4")[...], version: 4).coordinatorKeys == ["workers"])
        #expect(try FindCoordinatorRequest(bytes: bytes("FindCoordinatorRequest v1")[...], version: 1).key == "workers")
        let create = try CreateTopicsRequest(bytes: bytes("CreateTopicsRequest v7")[...], version: 7)
        #expect(create.topics[0].numPartitions == 3 && create.topics[0].configs.map(\.value) == ["compact"])
    }

    @Test func aMessageNeverReadsPastItsBytesNorCrashesOnAnyPrefix() throws {
        for vector in Vectors.loaded.messages where vector.name == "ProduceRequest" || vector.name == "FetchRequest" {
            let bytes = Hex.bytes(vector.hex)!
            for cut in 0..<bytes.count {
                if vector.name == "ProduceRequest" {
                    #expect(throws: KafkaDecodeError.self) { try ProduceRequest(bytes: bytes[..<cut], version: vector.version) }
                } else {
                    #expect(throws: KafkaDecodeError.self) { try FetchRequest(bytes: bytes[..<cut], version: vector.version) }
                }
            }
            // Bytes left over are an error too: a version mismatch must not pass silently.
            #expect(throws: KafkaDecodeError.self) { try ProduceRequest(bytes: (bytes + [0])[...], version: vector.version) }
        }
    }

    @Test func aLengthLargerThanTheBytesIsRefusedBeforeAnythingIsReserved() {
        // An int32 array count of 2^31-1 followed by nothing: refused at once.
        var reader = KafkaReader([0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: KafkaDecodeError.self) { _ = try reader.readArray(compact: false) { r throws(KafkaDecodeError) in try r.readInt8() } }
        var varint = KafkaReader([0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: KafkaDecodeError.self) { _ = try varint.readUnsignedVarint() }
        var bytes = KafkaReader([0x00, 0x00, 0x10, 0x00, 1, 2])
        #expect(throws: KafkaDecodeError.self) { _ = try bytes.readBytes(compact: false) }
    }

    @Test func stringsAreReadAsUTF8AndAnythingElseIsRefused() throws {
        func int16String(_ bytes: [UInt8]) -> KafkaReader { KafkaReader([0, UInt8(bytes.count)] + bytes) }
        func compactString(_ bytes: [UInt8]) -> KafkaReader { KafkaReader([UInt8(bytes.count + 1)] + bytes) }
        for text in ["", "rdkafka", "client\u{0}id", "é-topic", "付款", "🦀"] {
            var plain = int16String(Array(text.utf8))
            #expect(try plain.readString(compact: false) == text)
            var compact = compactString(Array(text.utf8))
            #expect(try compact.readString(compact: true) == text)
            #expect(compact.remaining == 0)
        }
        // A lone continuation byte, a cut sequence, an overlong encoding, a surrogate, after ASCII or alone.
        for bad: [UInt8] in [[0x80], [0x61, 0xC3], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x61, 0x62, 0xFF]] {
            var reader = int16String(bad)
            #expect(throws: KafkaDecodeError.invalid("a string that is not UTF-8")) { _ = try reader.readString(compact: false) }
        }
        var null = KafkaReader([0xFF, 0xFF])
        #expect(try null.readNullableString(compact: false) == nil)
    }

    @Test func varintsMatchKafkasEncoding() throws {
        for value: Int32 in [0, -1, 1, 63, -64, 64, 300, .max, .min] {
            var writer = KafkaWriter()
            writer.writeVarint(value)
            var reader = KafkaReader(writer.bytes)
            #expect(try reader.readVarint() == value)
        }
        for value: Int64 in [0, -1, 1_796_400_000_000, .max, .min] {
            var writer = KafkaWriter()
            writer.writeVarlong(value)
            var reader = KafkaReader(writer.bytes)
            #expect(try reader.readVarlong() == value)
        }
        var writer = KafkaWriter()
        writer.writeVarint(-1)
        #expect(writer.bytes == [0x01])  // zigzag
        writer = KafkaWriter()
        writer.writeUnsignedVarint(300)
        #expect(writer.bytes == [0xAC, 0x02])
    }
}

@Suite struct KafkaRecordBatchTests {
    @Test func batchesOfEveryCodecFromKafkaPythonDecode() throws {
        var decoded: [String: [KafkaRecord]] = [:]
        for vector in Vectors.loaded.batches {
            let batches = try KafkaRecordBatch.decodeAll(Hex.bytes(vector.hex)![...], decompressionLimit: 1 << 20)
            #expect(batches.count == 1)
            #expect(batches[0].codec.description == vector.codec)
            #expect(batches[0].producerId == 7 && batches[0].baseSequence == 3)
            try batches[0].validateForProduce()
            decoded[vector.codec] = batches[0].records
        }
        let plain = decoded["none"]!
        #expect(plain.count == 40)
        #expect(plain[0].key == Array("order-7".utf8) && plain[0].value == Array(#"{"orderId":"order-7"}"#.utf8))
        #expect(plain[0].timestamp == 1_796_400_000_000 && plain[1].timestamp == 1_796_400_000_005)
        #expect(plain[0].headers == [KafkaRecord.Header(key: "type", value: Array("OrderPlaced".utf8))])
        #expect(plain[1].key == nil && plain[1].value == nil)
        for codec in ["gzip", "snappy", "lz4", "zstd"] { #expect(decoded[codec] == plain, "\(codec)") }
    }

    @Test func whatWeEncodeKafkaPythonsBytesSay() throws {
        let vector = Vectors.loaded.batches.first { $0.codec == "none" }!
        let bytes = Hex.bytes(vector.hex)!
        let batch = try KafkaRecordBatch.decodeAll(bytes[...], decompressionLimit: 1 << 20)[0]
        #expect(batch.encoded() == bytes)
        for codec in CompressionCodec.allCases {
            let again = try KafkaRecordBatch.decodeAll(batch.encoded(codec: codec)[...], decompressionLimit: 1 << 20)
            #expect(again[0].records == batch.records && again[0].codec == codec)
        }
    }

    @Test func aFlippedBitIsCorruptAndACutBatchNeverCrashes() throws {
        let bytes = Hex.bytes(Vectors.loaded.batches.first { $0.codec == "zstd" }!.hex)!
        for position in [21, 40, 61, bytes.count / 2, bytes.count - 1] {
            var flipped = bytes
            flipped[position] ^= 0x10
            #expect(throws: RecordBatchError.self) { try KafkaRecordBatch.decodeAll(flipped[...], decompressionLimit: 1 << 20) }
        }
        for cut in 1..<bytes.count {
            #expect(throws: RecordBatchError.self) { try KafkaRecordBatch.decodeAll(bytes[..<cut], decompressionLimit: 1 << 20) }
        }
    }

    @Test func decompressionStopsAtItsLimit() throws {
        var batch = KafkaRecordBatch()
        batch.records = [KafkaRecord(offset: 0, timestamp: 0, key: nil, value: [UInt8](repeating: 0x41, count: 200_000))]
        for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
            let bytes = batch.encoded(codec: codec)
            #expect(bytes.count < 20_000, "\(codec) should compress a run of one byte")
            #expect(throws: RecordBatchError.tooLarge("\(codec) payload expands past 100000 bytes")) {
                try KafkaRecordBatch.decodeAll(bytes[...], decompressionLimit: 100_000)
            }
        }
    }

    @Test func producesRulesAreKafkasLogValidatorRules() throws {
        var batch = KafkaRecordBatch()
        batch.records = [KafkaRecord(offset: 0, timestamp: 0, key: nil, value: [1]), KafkaRecord(offset: 1, timestamp: 0, key: nil, value: [2])]
        batch.lastOffsetDelta = 1
        try batch.validateForProduce()
        var wrongCount = batch
        wrongCount.lastOffsetDelta = 5
        #expect(throws: RecordBatchError.self) { try wrongCount.validateForProduce() }
        var control = batch
        control.attributes = 0x20
        #expect(throws: RecordBatchError.self) { try control.validateForProduce() }
        var noSequence = batch
        noSequence.producerId = 4
        #expect(throws: RecordBatchError.self) { try noSequence.validateForProduce() }
    }
}
