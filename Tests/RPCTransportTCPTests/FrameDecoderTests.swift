import NIOCore
import NIOEmbedded
import RPCCore
import Testing

@testable import RPCTransportTCP

@Suite("FrameDecoder")
struct FrameDecoderTests {
    init() { _ = GlobalExecutorUnderTest.installed }

    static let frames = [
        Frame(type: .hello, streamID: 0, payload: Array(#"{"versions":[1],"maxFrameBytes":4096,"initialCredit":8}"#.utf8)),
        Frame(type: .headers, streamID: 1, payload: Array(#"{"method":"a.v1.S/M"}"#.utf8)),
        Frame(type: .message, flags: .endStream, streamID: 1, payload: Array(#"{"x":1}"#.utf8)),
        Frame(type: .message, flags: .endStream, streamID: 3, payload: []),
        Frame(type: .ping, flags: .ack, streamID: 0, payload: [0, 1, 2, 3, 4, 5, 6, 7]),
        Frame(type: FrameType(rawValue: 200), streamID: 9, payload: Array("future".utf8)),
    ]

    static func encoded(_ frames: [Frame]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for frame in frames { frame.encode(into: &buffer) }
        return buffer
    }

    static func decoded(_ channel: EmbeddedChannel) throws -> [FrameEvent] {
        var events: [FrameEvent] = []
        while let event = try channel.readInbound(as: FrameEvent.self) { events.append(event) }
        return events
    }

    static func channel(_ limits: ConnectionLimits = .defaults) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(FrameReader(limits: limits))
        return channel
    }

    @Test func headerIsTenBigEndianBytes() {
        var buffer = ByteBuffer()
        Frame(type: .trailers, flags: .endStream, streamID: 0x0102_0304, payload: Array("{}".utf8)).encode(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0, 0, 0, 2, 3, 1, 1, 2, 3, 4, UInt8(ascii: "{"), UInt8(ascii: "}")])
    }

    @Test func decodesFramesWrittenInOnePiece() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.encoded(Self.frames))
        #expect(try Self.decoded(channel) == Self.frames.map(FrameEvent.frame))
        #expect(try channel.finish().isClean)
    }

    @Test func decodesFramesSplitAtEveryByteBoundary() throws {
        let bytes = Array(Self.encoded(Self.frames).readableBytesView)
        for split in 1..<bytes.count {
            let channel = try Self.channel()
            try channel.writeInbound(ByteBuffer(bytes: bytes[..<split]))
            try channel.writeInbound(ByteBuffer(bytes: bytes[split...]))
            let frames = try Self.decoded(channel).filter { $0 != .partialFrame }
            #expect(frames == Self.frames.map(FrameEvent.frame), "split at \(split)")
            _ = try channel.finish()
        }
    }

    @Test func decodesFramesFedOneByteAtATime() throws {
        let channel = try Self.channel()
        var events: [FrameEvent] = []
        for byte in Self.encoded(Self.frames).readableBytesView {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            events += try Self.decoded(channel)
        }
        #expect(events.filter { $0 != .partialFrame } == Self.frames.map(FrameEvent.frame))
        #expect(events.contains(.partialFrame))
    }

    @Test func reportsAPartialFrameSoItCanBeTimedOut() throws {
        let channel = try Self.channel()
        let bytes = Array(Self.encoded([Self.frames[1]]).readableBytesView)
        try channel.writeInbound(ByteBuffer(bytes: bytes.prefix(12)))
        #expect(try Self.decoded(channel) == [.partialFrame])
        try channel.writeInbound(ByteBuffer(bytes: bytes.dropFirst(12)))
        #expect(try Self.decoded(channel) == [.frame(Self.frames[1])])
    }

    @Test func skipsAnOversizedFrameByItsLengthAndGoesOn() throws {
        var limits = ConnectionLimits.defaults
        limits.maxFrameBytes = 16
        let channel = try Self.channel(limits)
        let big = Frame(type: .message, streamID: 5, payload: Array(repeating: UInt8(ascii: "x"), count: 1000))
        let small = Frame(type: .message, streamID: 7, payload: Array("{}".utf8))
        let bytes = Array(Self.encoded([big, small]).readableBytesView)
        // In pieces, so the skip spans several reads.
        for chunk in stride(from: 0, to: bytes.count, by: 100) {
            try channel.writeInbound(ByteBuffer(bytes: bytes[chunk..<min(chunk + 100, bytes.count)]))
        }
        let events = try Self.decoded(channel).filter { $0 != .partialFrame }
        #expect(events == [.oversizedFrame(type: .message, streamID: 5, length: 1000), .frame(small)])
        // A header alone is a partial frame too (it must be timed out): nothing of it is kept.
        let stalled = try Self.channel(limits)
        try stalled.writeInbound(ByteBuffer(bytes: bytes.prefix(Frame.headerSize)))
        #expect(try Self.decoded(stalled) == [.partialFrame])
    }

    @Test func throwsForAFrameOverTheSkippableLimitAndReadsNothingMore() throws {
        var limits = ConnectionLimits.defaults
        limits.maxFrameBytes = 16
        limits.maxSkippableFrameBytes = 64
        let channel = try Self.channel(limits)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(65))
        buffer.writeBytes([2, 0, 0, 0, 0, 1])
        #expect(throws: FrameTooLargeError(length: 65, limit: 64)) { try channel.writeInbound(buffer) }
        // The connection is closing: what follows is not read as frames.
        try channel.writeInbound(Self.encoded(Self.frames))
        #expect(try Self.decoded(channel) == [])
    }

    @Test func keepsOnlyTheUnreadTailAcrossManyReads() throws {
        let channel = try Self.channel()
        let frame = Frame(type: .message, streamID: 1, payload: Array(repeating: UInt8(ascii: "x"), count: 3000))
        let bytes = Array(Self.encoded(Array(repeating: frame, count: 50)).readableBytesView)
        // Reads that end inside frames: each whole frame is delivered as soon as it is complete.
        var delivered = 0
        for chunk in stride(from: 0, to: bytes.count, by: 1777) {
            try channel.writeInbound(ByteBuffer(bytes: bytes[chunk..<min(chunk + 1777, bytes.count)]))
            let frames = try Self.decoded(channel).filter { $0 != .partialFrame }
            #expect(frames.allSatisfy { $0 == .frame(frame) })
            delivered += frames.count
            #expect(delivered == min(chunk + 1777, bytes.count) / (Frame.headerSize + 3000))
        }
        #expect(delivered == 50)
        #expect(try channel.finish().isClean)
    }
}
