import BrokerCore
import KafkaWire
public import Logging
public import NIOCore
import RPCTransportNIO
public import ServiceLifecycle

/// The broker's Kafka-protocol port: accepts connections, cuts the byte stream into request
/// frames, and answers them one at a time per connection, in order (Kafka "mutes" a connection
/// while its request is handled; clients rely on responses in request order). Parsing and
/// answering are ``KafkaAPIs``'s.
public final class KafkaListener: Service, Sendable {
    private let listener: SocketListener
    private let apis: KafkaAPIs
    private let logger: Logger

    public init(apis: KafkaAPIs, logger: Logger = Logger(label: "kafka")) throws {
        let (host, port) = try Self.parse(apis.settings.address)
        self.listener = SocketListener(host: host, port: port)
        self.apis = apis
        self.logger = logger
    }

    static func parse(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port)
        else { throw KafkaListenerError.badAddress(address) }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    /// The address bound, once listening.
    public func listeningAddress() async throws -> SocketAddress { try await listener.listeningAddress() }

    public func run() async throws {
        let listener = self.listener
        let apis = self.apis
        let maxFrame = apis.settings.maxRequestBytes
        let logger = self.logger
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.announce() }
                group.addTask {
                    // Consumer groups' session timeouts and rebalance deadlines.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                        await apis.tickGroups()
                    }
                }
                try await listener.run { channel in
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: maxFrame)))
                    try channel.pipeline.syncOperations.addHandler(KafkaConnectionHandler(apis: apis, logger: logger))
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            listener.stop()
        }
    }

    /// `{"event":"listening-kafka",…}` on stdout, as the RPC port's line.
    private func announce() async throws {
        try await listener.announce(event: "listening-kafka", service: "broker", logger: logger) { "Kafka protocol at \($0):\($1)" }
    }
}

public enum KafkaListenerError: Error, CustomStringConvertible {
    case badAddress(String)
    case frameTooLarge(size: Int, limit: Int)

    public var description: String {
        switch self {
        case .badAddress(let address): return "\(address) is not host:port"
        case .frameTooLarge(let size, let limit):
            return "a request frame of \(size) bytes is over the limit of \(limit) (--kafka-max-request-bytes)"
        }
    }
}

/// Cuts the stream into frames: int32 size, then that many bytes. A size below a request
/// header's or over the limit is an error that closes the connection, before anything is
/// buffered for it.
struct KafkaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameBytes: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 8, Int(size) <= maxFrameBytes else { throw KafkaListenerError.frameTooLarge(size: Int(size), limit: maxFrameBytes) }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }
}

/// One connection: requests queue up and are answered one after another. While a few are
/// queued it stops reading, so a client that pipelines without bound meets TCP backpressure
/// rather than growing the queue.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let maxQueued = 8
    private let apis: KafkaAPIs
    private let logger: Logger
    private var queue = CircularBuffer<[UInt8]>()
    private var busy = false
    private var readHeld = false
    private var closed = false
    private var info = KafkaConnectionInfo(localHost: "127.0.0.1", localPort: 0)

    init(apis: KafkaAPIs, logger: Logger) {
        self.apis = apis
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        if let local = context.channel.localAddress {
            info = KafkaConnectionInfo(
                localHost: local.ipAddress ?? "127.0.0.1", localPort: local.port ?? 0, peerHost: context.channel.remoteAddress?.ipAddress ?? "")
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        queue.append(frame.readBytes(length: frame.readableBytes) ?? [])
        if !busy { next(context: context) }
    }

    func read(context: ChannelHandlerContext) {
        if queue.count >= Self.maxQueued {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// A peer that went away has no use for the answers to what it had queued: drop it (a
    /// request already being handled finishes; Kafka does the same).
    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        queue.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("closing a Kafka connection", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    private func next(context: ChannelHandlerContext) {
        guard !closed, let frame = queue.popFirst() else {
            busy = false
            return
        }
        busy = true
        if readHeld && queue.count < Self.maxQueued {
            readHeld = false
            context.read()
        }
        let apis = self.apis
        let info = self.info
        let reply = context.eventLoop.makePromise(of: KafkaReply.self)
        reply.completeWithTask { await apis.handle(frame, connection: info) }
        reply.futureResult.assumeIsolated().whenSuccess { reply in
            switch reply {
            case .respond(let bytes):
                context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .silent:
                break
            case .close:
                context.close(promise: nil)
                return
            }
            self.next(context: context)
        }
    }
}
