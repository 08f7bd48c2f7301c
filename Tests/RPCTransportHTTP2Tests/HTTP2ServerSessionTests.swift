import NGHTTP2
import Testing

/// The nghttp2 wrapper without sockets: bytes in, bytes out.
@Suite("HTTP/2 server session")
struct HTTP2ServerSessionTests {
    final class Recorder: HTTP2ServerSessionDelegate {
        var requests: [(streamID: Int32, headers: [HTTP2Header], tooLarge: Bool, endStream: Bool)] = []
        var data: [UInt8] = []
        var closed: [Int32] = []
        var settings = 0

        func session(_ session: HTTP2ServerSession, receivedRequest streamID: Int32, headers: [HTTP2Header], headersTooLarge: Bool, endStream: Bool) {
            requests.append((streamID, headers, headersTooLarge, endStream))
        }
        func session(_ session: HTTP2ServerSession, receivedData bytes: UnsafeRawBufferPointer, streamID: Int32) { data += bytes }
        func session(_ session: HTTP2ServerSession, receivedEndStream streamID: Int32) {}
        func session(_ session: HTTP2ServerSession, closedStream streamID: Int32, errorCode: HTTP2ErrorCode) { closed.append(streamID) }
        func session(_ session: HTTP2ServerSession, sentChunk streamID: Int32) {}
        func sessionReceivedPingAck(_ session: HTTP2ServerSession) {}
        func sessionReceivedSettings(_ session: HTTP2ServerSession) { settings += 1 }
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let emptySettings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]

    /// A frame: 24-bit length, type, flags, stream id, payload.
    static func frame(type: UInt8, flags: UInt8, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [
            UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags,
            UInt8(stream >> 24 & 0xff), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff),
        ] + payload
    }

    /// An HPACK string literal (no Huffman) with a `prefixBits`-bit length prefix after `first`.
    static func literal(_ text: String) -> [UInt8] {
        integer(text.utf8.count, prefixBits: 7, first: 0) + Array(text.utf8)
    }

    static func integer(_ value: Int, prefixBits: Int, first: UInt8) -> [UInt8] {
        let limit = (1 << prefixBits) - 1
        guard value >= limit else { return [first | UInt8(value)] }
        var bytes = [first | UInt8(limit)]
        var rest = value - limit
        while rest >= 128 {
            bytes.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        return bytes + [UInt8(rest)]
    }

    /// A gRPC request's header block: POST, http, the path, content-type, and any extra fields.
    static func requestBlock(path: String, extra: [(String, String)] = []) -> [UInt8] {
        var block: [UInt8] = [0x83, 0x86]  // :method POST, :scheme http (static table)
        block += [0x04] + literal(path)  // :path, literal without indexing, indexed name 4
        block += [0x01] + literal("edge")  // :authority
        block += [0x0f, 0x10] + literal("application/grpc")  // content-type, static index 31
        for (name, value) in extra { block += [0x00] + literal(name) + literal(value) }
        return block
    }

    static func frameTypes(_ bytes: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var index = 0
        while index + 9 <= bytes.count {
            let length = Int(bytes[index]) << 16 | Int(bytes[index + 1]) << 8 | Int(bytes[index + 2])
            types.append(bytes[index + 3])
            index += 9 + length
        }
        return types
    }

    @Test func theFirstOutputIsSettingsWithTheLimits() throws {
        var limits = HTTP2SessionLimits.defaults
        limits.maxConcurrentStreams = 7
        limits.maxHeaderListBytes = 4096
        let session = try HTTP2ServerSession(limits: limits)
        var output: [UInt8] = []
        #expect(session.takeOutput(into: &output))
        #expect(Self.frameTypes(output).first == 4)  // SETTINGS, then the connection WINDOW_UPDATE
        let length = Int(output[0]) << 16 | Int(output[1]) << 8 | Int(output[2])
        var settings: [UInt16: UInt32] = [:]
        for entry in stride(from: 9, to: 9 + length, by: 6) {
            let id = UInt16(output[entry]) << 8 | UInt16(output[entry + 1])
            settings[id] = output[(entry + 2)..<(entry + 6)].reduce(0) { $0 << 8 | UInt32($1) }
        }
        #expect(settings[0x3] == 7 && settings[0x6] == 4096)
    }

    @Test func anythingButThePrefaceFailsTheSession() throws {
        let session = try HTTP2ServerSession()
        #expect(throws: HTTP2SessionError.self) {
            try Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { try session.receive($0) }
        }
    }

    @Test func aProtocolErrorEndsTheSessionWithGoAway() throws {
        let session = try HTTP2ServerSession()
        var output: [UInt8] = []
        session.takeOutput(into: &output)
        // SETTINGS on a stream is a connection error (RFC 9113 §6.5).
        let bytes = Self.preface + Self.emptySettings + Self.frame(type: 4, flags: 0, stream: 1, [])
        try? bytes.withUnsafeBytes { try session.receive($0) }
        output.removeAll()
        session.takeOutput(into: &output)
        #expect(Self.frameTypes(output).contains(7))
        #expect(!session.wantsRead)
    }

    @Test func requestsAreReportedAndOversizedHeaderBlocksFlagged() throws {
        var limits = HTTP2SessionLimits.defaults
        limits.maxHeaderListBytes = 1024
        let session = try HTTP2ServerSession(limits: limits)
        let recorder = Recorder()
        session.delegate = recorder
        var bytes = Self.preface + Self.emptySettings
        bytes += Self.frame(type: 1, flags: 0x4, stream: 1, Self.requestBlock(path: "/a.v1.S/M", extra: [("x-request-id", "r-1")]))
        bytes += Self.frame(type: 0, flags: 0x1, stream: 1, [0, 0, 0, 0, 2] + Array("{}".utf8))
        bytes += Self.frame(
            type: 1, flags: 0x5, stream: 3, Self.requestBlock(path: "/a.v1.S/M", extra: [("x-big", String(repeating: "y", count: 2000))]))
        try bytes.withUnsafeBytes { try session.receive($0) }

        #expect(recorder.settings == 1)
        #expect(recorder.requests.count == 2)
        let first = recorder.requests[0]
        #expect(first.streamID == 1 && !first.tooLarge && !first.endStream)
        #expect(first.headers.contains(HTTP2Header(":path", "/a.v1.S/M")) && first.headers.contains(HTTP2Header("x-request-id", "r-1")))
        #expect(recorder.data == [0, 0, 0, 0, 2] + Array("{}".utf8))
        let second = recorder.requests[1]
        #expect(second.streamID == 3 && second.tooLarge && second.endStream)
        #expect(!second.headers.contains { $0.name == "x-big" })

        // A response with a body and trailers goes out as HEADERS, DATA, HEADERS.
        session.respond(streamID: 1, headers: [HTTP2Header(":status", "200")], endStream: false)
        session.sendData(streamID: 1, [0, 0, 0, 0, 2] + Array("{}".utf8))
        session.finish(streamID: 1, trailers: [HTTP2Header("grpc-status", "0")])
        var output: [UInt8] = []
        session.takeOutput(into: &output)
        let types = Self.frameTypes(output)
        #expect(types.filter { $0 == 1 || $0 == 0 }.suffix(3) == [1, 0, 1])
    }
}
