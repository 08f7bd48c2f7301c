import NIOCore
import NIOEmbedded
import RPCCore
import Testing

@testable import RPCTransportTCP

@Suite("TCPFrameChannel flushing")
struct TCPFrameChannelTests {
    init() { _ = GlobalExecutorUnderTest.installed }

    static func activeChannel() throws -> (EmbeddedChannel, TCPFrameChannel) {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let frames = TCPFrameChannel(channel: channel, onActivity: nil)
        frames.becameActive()
        return (channel, frames)
    }

    static func outboundBytes(_ channel: EmbeddedChannel) throws -> Int {
        var total = 0
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { total += buffer.readableBytes }
        return total
    }

    @Test("small writes from the loop wait for one scheduled flush and leave together")
    func smallWritesShareAFlush() throws {
        let (channel, frames) = try Self.activeChannel()
        frames.write([Frame(type: .message, streamID: 1, payload: Array(repeating: 0x41, count: 200))])
        frames.write([Frame(type: .message, streamID: 1, payload: Array(repeating: 0x42, count: 200))])
        #expect(try Self.outboundBytes(channel) == 0)
        channel.embeddedEventLoop.run()
        let first = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(first.readableBytes == 2 * (200 + Frame.headerSize))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
    }

    @Test("a write from the loop that fills the threshold goes out at once, before the loop runs again")
    func largeWriteGoesOutAtOnce() throws {
        let (channel, frames) = try Self.activeChannel()
        let big = Array(repeating: UInt8(0x43), count: TCPFrameChannel.eagerFlushBytes)
        frames.write([Frame(type: .message, streamID: 1, payload: [0x44])])
        frames.write([Frame(type: .message, streamID: 1, payload: big)])
        // Both frames, in order, without running the loop.
        #expect(try Self.outboundBytes(channel) == (1 + Frame.headerSize) + (big.count + Frame.headerSize))
        // The flush that the first write scheduled finds nothing left.
        channel.embeddedEventLoop.run()
        #expect(try Self.outboundBytes(channel) == 0)
    }

    @Test("a CREDIT written from the loop goes out at once, with what was pending before it")
    func creditGoesOutAtOnce() throws {
        let (channel, frames) = try Self.activeChannel()
        frames.write([Frame(type: .message, streamID: 3, payload: [0x45])])
        #expect(try Self.outboundBytes(channel) == 0)
        let credit = Frame(type: .credit, streamID: 1, payload: Array(#"{"n":32}"#.utf8))
        frames.write([credit])
        #expect(try Self.outboundBytes(channel) == (1 + Frame.headerSize) + (credit.payload.count + Frame.headerSize))
        channel.embeddedEventLoop.run()
        #expect(try Self.outboundBytes(channel) == 0)
    }
}
