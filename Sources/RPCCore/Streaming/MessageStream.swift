/// The messages of one direction of a call, decoded one at a time as they are read.
///
/// On a server this is a streaming call's requests; on a client, its responses. Reading is what
/// returns credit to the sender, so a stream that is not read slows its sender down.
public struct MessageStream<Message: Decodable & Sendable>: AsyncSequence, Sendable {
    public typealias Element = Message
    let inbound: InboundMessages

    public init(_ inbound: InboundMessages) { self.inbound = inbound }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let inbound: InboundMessages
        public mutating func next() async throws -> Message? {
            guard let bytes = try await inbound.next() else { return nil }
            return try MessageCoding.decode(Message.self, from: bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inbound: inbound) }
}

/// Sends the messages of one direction of a call, waiting for credit when the reader is behind.
public struct MessageWriter<Message: Encodable & Sendable>: Sendable {
    let sendBytes: @Sendable ([UInt8]) async throws -> Void

    public init(_ sendBytes: @escaping @Sendable ([UInt8]) async throws -> Void) { self.sendBytes = sendBytes }

    /// Encodes and sends `message`; throws if the call is over or its task is cancelled.
    public func write(_ message: Message) async throws {
        try await sendBytes(MessageCoding.encode(message))
    }

    /// Sends every message of `messages`, in order.
    public func write(contentsOf messages: some Sequence<Message>) async throws {
        for message in messages { try await write(message) }
    }
}
