/// The messages of one direction of a call, decoded one at a time as they are read.
///
/// On a server this is a streaming call's requests; on a client, its responses. Reading is what
/// returns credit to the sender, so a stream that is not read slows its sender down.
public struct MessageStream<Message: Decodable & Sendable>: AsyncSequence, Sendable {
    public typealias Element = Message
    let inbound: InboundMessages
    let decode: MessageCoding.Decoder<Message>

    /// Requests on a server are checked against their schema (`SchemaValidated`); a client
    /// takes the server's responses as they come.
    public init(_ inbound: InboundMessages, checksSchema: Bool = false) {
        self.init(inbound, decode: MessageCoding.decoder(for: Message.self, checkingSchema: checksSchema))
    }

    /// A stream whose messages `decode` reads (`MessageCoding.decoder(for:checkingSchema:)`,
    /// made once per method).
    public init(_ inbound: InboundMessages, decode: @escaping MessageCoding.Decoder<Message>) {
        self.inbound = inbound
        self.decode = decode
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let inbound: InboundMessages
        let decode: MessageCoding.Decoder<Message>
        public mutating func next() async throws -> Message? {
            guard let bytes = try await inbound.next() else { return nil }
            return try decode(bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inbound: inbound, decode: decode) }
}

/// Sends the messages of one direction of a call, waiting for credit when the reader is behind.
public struct MessageWriter<Message: Encodable & Sendable>: Sendable {
    let sendBytes: @Sendable ([UInt8]) async throws -> Void
    let encode: MessageCoding.Encoder<Message>

    /// `encode`: how each message is written (`MessageCoding.encoder(for:)`, made once per
    /// method), by default chosen here.
    public init(
        _ sendBytes: @escaping @Sendable ([UInt8]) async throws -> Void,
        encode: @escaping MessageCoding.Encoder<Message> = MessageCoding.encoder(for: Message.self)
    ) {
        self.sendBytes = sendBytes
        self.encode = encode
    }

    /// Encodes and sends `message`; throws if the call is over or its task is cancelled.
    public func write(_ message: Message) async throws {
        try await sendBytes(encode(message))
    }

    /// Sends every message of `messages`, in order.
    public func write(contentsOf messages: some Sequence<Message>) async throws {
        for message in messages { try await write(message) }
    }
}
