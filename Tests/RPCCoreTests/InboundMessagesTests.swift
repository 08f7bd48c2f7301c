import RPCCore
import Testing

/// The receive buffer of one stream: order, the end after what is buffered, and a failure that
/// drops it. Its queue keeps the oldest message in a field of its own and the rest in an array,
/// so the cases cross between the two.
@Suite struct InboundMessagesTests {
    static func message(_ n: UInt8) -> [UInt8] { [n, n] }

    @Test func messagesComeOutInArrivalOrderAcrossRefills() async throws {
        let inbound = InboundMessages()
        for n in UInt8(1)...3 { inbound.append(Self.message(n)) }
        #expect(try await inbound.next() == Self.message(1))
        #expect(try await inbound.next() == Self.message(2))
        inbound.append(Self.message(4))
        #expect(try await inbound.next() == Self.message(3))
        #expect(try await inbound.next() == Self.message(4))
        inbound.append(Self.message(5))
        #expect(try await inbound.next() == Self.message(5))
        inbound.finish()
        #expect(try await inbound.next() == nil)
    }

    @Test func aWaitingReaderGetsTheNextMessage() async throws {
        let inbound = InboundMessages()
        async let first = inbound.next()
        // The reader may or may not be waiting yet: either way it gets the first message.
        inbound.append(Self.message(1))
        inbound.append(Self.message(2))
        #expect(try await first == Self.message(1))
        #expect(try await inbound.next() == Self.message(2))
    }

    @Test func anErrorEndComesAfterTheBufferedMessages() async throws {
        let inbound = InboundMessages()
        inbound.append(Self.message(1))
        inbound.append(Self.message(2))
        let error = RPCError(code: .unavailable, message: "gone")
        inbound.finish(throwing: error)
        inbound.append(Self.message(3))  // after the end: dropped
        #expect(try await inbound.next() == Self.message(1))
        #expect(try await inbound.next() == Self.message(2))
        await #expect(throws: error) { try await inbound.next() }
    }

    @Test func failingDropsWhatIsBuffered() async throws {
        let inbound = InboundMessages()
        inbound.append(Self.message(1))
        inbound.append(Self.message(2))
        let error = RPCError(code: .cancelled, message: "call over")
        inbound.fail(error)
        await #expect(throws: error) { try await inbound.next() }
    }
}
