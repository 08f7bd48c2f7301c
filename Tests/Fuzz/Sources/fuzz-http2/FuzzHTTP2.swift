import FuzzSupport
import NGHTTP2

/// The HTTP/2 edge's session (libnghttp2 and our callbacks) on arbitrary bytes after a valid
/// preface and SETTINGS, as a hostile client would send them; every request it reports is answered,
/// so the response paths (data provider, trailers) run too.
@main
enum Target {
    static func main() { runFuzzer { data, count in fuzzHTTP2(data, count) } }
}

/// Also exported under libFuzzer\'s usual name: the linker keeps libFuzzer\'s own `main` object, which refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP2(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start = data else { return 0 }
    guard let session = try? HTTP2ServerSession() else { fatalError("no session") }
    let responder = Responder()
    session.delegate = responder
    var output: [UInt8] = []
    session.takeOutput(into: &output)
    let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
    let input = preface + Array(UnsafeBufferPointer(start: start, count: count))
    do {
        try input.withUnsafeBytes { try session.receive($0) }
    } catch {
        return 0  // the session ended: what a server would close
    }
    for streamID in responder.requests {
        session.respond(streamID: streamID, headers: [HTTP2Header(":status", "200")], endStream: false)
        session.sendData(streamID: streamID, Array(repeating: 0x41, count: 70_000))  // past the default window
        session.finish(streamID: streamID, trailers: [HTTP2Header("grpc-status", "0")])
    }
    output.removeAll()
    session.takeOutput(into: &output)
    return 0
}

final class Responder: HTTP2ServerSessionDelegate {
    var requests: [Int32] = []
    func session(_ session: HTTP2ServerSession, receivedRequest streamID: Int32, headers: [HTTP2Header], headersTooLarge: Bool, endStream: Bool) {
        requests.append(streamID)
    }
    func session(_ session: HTTP2ServerSession, receivedData bytes: UnsafeRawBufferPointer, streamID: Int32) {
        session.consume(streamID: streamID, bytes: bytes.count)
    }
    func session(_ session: HTTP2ServerSession, receivedEndStream streamID: Int32) {}
    func session(_ session: HTTP2ServerSession, closedStream streamID: Int32, errorCode: HTTP2ErrorCode) {}
    func session(_ session: HTTP2ServerSession, sentChunk streamID: Int32) {}
    func sessionReceivedPingAck(_ session: HTTP2ServerSession) {}
    func sessionReceivedSettings(_ session: HTTP2ServerSession) {}
}
