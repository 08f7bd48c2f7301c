import NIOCore
import Testing

@testable import KafkaListener

/// Cutting the Kafka port's byte stream into request frames, whatever the reads' sizes.
@Suite struct KafkaFrameCutterTests {
    /// A frame: the int32 size, then `body`.
    func frame(_ body: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(body.count))
        buffer.writeBytes(body)
        return Array(buffer.readableBytesView)
    }

    func bodies(_ count: Int) -> [[UInt8]] { (0..<count).map { i in (0..<(8 + i * 37)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) } } }

    /// Feeds `stream` in reads of `readSize` bytes and collects the frames cut.
    func cut(_ stream: [UInt8], readSize: Int, limit: Int = 1 << 20) throws -> (frames: [[UInt8]], kept: Int) {
        var cutter = KafkaFrameCutter(maxFrameBytes: limit)
        var frames: [[UInt8]] = []
        var at = 0
        while at < stream.count {
            let end = min(stream.count, at + readSize)
            try cutter.cut(ByteBuffer(bytes: stream[at..<end])) { frames.append($0) }
            at = end
        }
        return (frames, cutter.keptBytes)
    }

    @Test(arguments: [1, 3, 4, 5, 11, 64, 4096])
    func framesComeOutWholeAndInOrderWhateverTheReads(readSize: Int) throws {
        let bodies = bodies(12)
        let (frames, kept) = try cut(bodies.flatMap(frame), readSize: readSize)
        #expect(frames == bodies)
        #expect(kept == 0)
    }

    @Test func aFrameNotYetWholeIsKeptUntilItsLastByte() throws {
        let body = bodies(3)[2]
        let stream = frame(body)
        var cutter = KafkaFrameCutter(maxFrameBytes: 1 << 20)
        var frames: [[UInt8]] = []
        try cutter.cut(ByteBuffer(bytes: stream.dropLast())) { frames.append($0) }
        #expect(frames.isEmpty)
        #expect(cutter.keptBytes == stream.count - 1)
        try cutter.cut(ByteBuffer(bytes: stream.suffix(1))) { frames.append($0) }
        #expect(frames == [body])
        #expect(cutter.keptBytes == 0)
    }

    @Test func aSizeOverTheLimitIsRefusedBeforeItsBytesArrive() throws {
        var cutter = KafkaFrameCutter(maxFrameBytes: 1000)
        var frames: [[UInt8]] = []
        let first = bodies(1)[0]
        var stream = frame(first)
        stream += [0, 0, 0x03, 0xE9]  // 1001: one byte over, and none of its bytes sent
        #expect(throws: KafkaListenerError.self) { try cutter.cut(ByteBuffer(bytes: stream)) { frames.append($0) } }
        #expect(frames == [first])  // what was whole before the bad size was cut
        // At the limit is fine.
        var atLimit = KafkaFrameCutter(maxFrameBytes: 1000)
        try atLimit.cut(ByteBuffer(bytes: [0, 0, 0x03, 0xE8])) { _ in }
        #expect(atLimit.keptBytes == 4)
    }

    @Test(arguments: [Int32(-1), Int32.min, 0, 7])
    func aSizeShorterThanARequestHeaderIsRefused(size: Int32) {
        var cutter = KafkaFrameCutter(maxFrameBytes: 1 << 20)
        var buffer = ByteBuffer()
        buffer.writeInteger(size)
        buffer.writeBytes([UInt8](repeating: 0, count: 16))
        #expect(throws: KafkaListenerError.self) { try cutter.cut(buffer) { _ in Issue.record("no frame expected") } }
    }

    /// Frames far larger than a read, each arriving in many partial reads (the kept tail grows
    /// and is compacted between them).
    @Test func largeFramesArrivingInManySmallReadsComeOutWhole() throws {
        let big = [UInt8](repeating: 7, count: 100_000)
        var stream: [UInt8] = []
        for _ in 0..<20 { stream += frame(big) }
        let (frames, kept) = try cut(stream, readSize: 1_500)
        #expect(frames.count == 20 && frames.allSatisfy { $0 == big })
        #expect(kept == 0)
    }
}
