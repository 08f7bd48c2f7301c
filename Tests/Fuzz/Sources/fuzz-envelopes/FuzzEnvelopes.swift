import FuzzSupport
import RPCCore

/// The control-frame envelopes (HELLO, HEADERS, TRAILERS, CANCEL, CREDIT, GOAWAY) and the JSON
/// scanner under them, on arbitrary bytes. A payload that decodes must encode and decode again to
/// the same value.
@main
enum Target {
    static func main() { runFuzzer { data, count in fuzzEnvelopes(data, count) } }
}

/// Also exported under libFuzzer\'s usual name: the linker keeps libFuzzer\'s own `main` object, which refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelopes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start = data, count > 0 else { return 0 }
    // The first byte picks the envelope, so each gets its share of inputs.
    let bytes = Array(UnsafeBufferPointer(start: start + 1, count: count - 1))
    switch start.pointee % 8 {
    case 0: checkStableRoundTrip(Hello.self, bytes)
    case 1:
        checkStableRoundTrip(CallHeaders.self, bytes)
        // The direct reader the server's hot path uses agrees with itself across a round trip.
        if let headers = try? CallHeaders(jsonBytes: bytes) {
            precondition((try? CallHeaders(jsonBytes: try! MessageCoding.encode(headers))) == headers, "CallHeaders changed across a round trip")
        }
    case 2: checkStableRoundTrip(Trailers.self, bytes)
    case 3: checkStableRoundTrip(Cancel.self, bytes)
    case 4:
        checkStableRoundTrip(Credit.self, bytes)
        if let credit = try? Credit(jsonBytes: bytes) {
            precondition((try? Credit(jsonBytes: try! MessageCoding.encode(credit))) == credit, "Credit changed across a round trip")
        }
    case 5: checkStableRoundTrip(GoAway.self, bytes)
    default: checkStableRoundTrip(JSONValue.self, bytes)
    }
    return 0
}
