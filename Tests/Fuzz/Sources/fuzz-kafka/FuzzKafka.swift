import FuzzSupport
import KafkaMessages
import KafkaWire

/// What the broker's Kafka port reads from clients: every request it parses, at every version it
/// parses, and record batches (CRC, the four codecs, varint records). Byte 0 picks the decoder,
/// byte 1 the version; the rest is the body. A request that decodes must encode to bytes that
/// decode to the same value; a batch that decodes must re-encode (uncompressed) to the same records.
@main
enum Target {
    static func main() { runFuzzer { data, count in fuzzKafka(data, count) } }
}

/// The decoders in the order byte 0 picks them (Tests/Fuzz/make_corpus.py writes seeds in this order).
let requestDecoders: [(any KafkaMessage.Type, @Sendable ([UInt8], Int16) -> Void)] = [
    (ApiVersionsRequest.self, { check(ApiVersionsRequest.self, $0, $1) }),
    (MetadataRequest.self, { check(MetadataRequest.self, $0, $1) }),
    (ProduceRequest.self, { check(ProduceRequest.self, $0, $1) }),
    (FetchRequest.self, { check(FetchRequest.self, $0, $1) }),
    (ListOffsetsRequest.self, { check(ListOffsetsRequest.self, $0, $1) }),
    (InitProducerIdRequest.self, { check(InitProducerIdRequest.self, $0, $1) }),
    (CreateTopicsRequest.self, { check(CreateTopicsRequest.self, $0, $1) }),
    (DeleteTopicsRequest.self, { check(DeleteTopicsRequest.self, $0, $1) }),
    (FindCoordinatorRequest.self, { check(FindCoordinatorRequest.self, $0, $1) }),
    (JoinGroupRequest.self, { check(JoinGroupRequest.self, $0, $1) }),
    (SyncGroupRequest.self, { check(SyncGroupRequest.self, $0, $1) }),
    (HeartbeatRequest.self, { check(HeartbeatRequest.self, $0, $1) }),
    (LeaveGroupRequest.self, { check(LeaveGroupRequest.self, $0, $1) }),
    (OffsetCommitRequest.self, { check(OffsetCommitRequest.self, $0, $1) }),
    (OffsetFetchRequest.self, { check(OffsetFetchRequest.self, $0, $1) }),
    (DescribeGroupsRequest.self, { check(DescribeGroupsRequest.self, $0, $1) }),
    (ListGroupsRequest.self, { check(ListGroupsRequest.self, $0, $1) }),
    (DescribeConfigsRequest.self, { check(DescribeConfigsRequest.self, $0, $1) }),
]

func check<Message: KafkaMessage & Equatable>(_: Message.Type, _ bytes: [UInt8], _ version: Int16) {
    guard let message = try? Message(bytes: bytes[...], version: version) else { return }
    let encoded = message.encoded(version: version)
    guard let again = try? Message(bytes: encoded[...], version: version) else {
        fatalError("\(Message.self) v\(version) decoded but its encoding does not decode")
    }
    precondition(again == message, "\(Message.self) v\(version) changed across a round trip")
}

/// Also exported under libFuzzer's usual name: the linker keeps libFuzzer's own `main` object, which refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKafka(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start = data, count > 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: start + 2, count: count - 2))
    let pick = Int(start.pointee) % (requestDecoders.count + 2)
    if pick < requestDecoders.count {
        let (type, decode) = requestDecoders[pick]
        let versions = type.versions
        let version = versions.lowerBound + Int16(start[1]) % Int16(versions.count)
        decode(bytes, version)
    } else if pick == requestDecoders.count {
        // A request header, either form.
        var reader = KafkaReader(bytes)
        _ = try? KafkaRequestHeader(from: &reader, flexible: start[1] & 1 == 1)
    } else {
        guard let batches = try? KafkaRecordBatch.decodeAll(bytes[...], decompressionLimit: 1 << 20) else { return 0 }
        for batch in batches {
            guard let again = try? KafkaRecordBatch.decodeAll(batch.encoded()[...], decompressionLimit: 1 << 20) else {
                fatalError("a batch decoded but its encoding does not decode")
            }
            precondition(again.count == 1 && again[0].records == batch.records, "a batch's records changed across a round trip")
        }
    }
    return 0
}
