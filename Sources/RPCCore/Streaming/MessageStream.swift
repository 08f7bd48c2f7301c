/// The messages of one direction of a call, decoded one at a time as they are read.
///
/// On a server this is a streaming call's requests; on a client, its responses. Reading is what
/// returns credit to the sender, so a stream that is not read slows its sender down.
public struct MessageStream<Message: Decodable & Sendable>: AsyncSequence, Sendable {
    public typealias Element = Message
    let inbound: InboundMessages
    /// Requests on a server are checked against their schema (`SchemaValidated`); a client
    /// takes the server's responses as they come.
    let checksSchema: Bool

    public init(_ inbound: InboundMessages, checksSchema: Bool = false) {
        self.inbound = inbound
        self.checksSchema = checksSchema
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let inbound: InboundMessages
        let checksSchema: Bool
        public mutating func next() async throws -> Message? {
            guard let bytes = try await inbound.next() else { return nil }
            let message = try MessageCoding.decode(Message.self, from: bytes)
            if checksSchema, let validated = message as? any SchemaValidated { try validated.checkSchema("\(Message.self)") }
            return message
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inbound: inbound, checksSchema: checksSchema) }
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
