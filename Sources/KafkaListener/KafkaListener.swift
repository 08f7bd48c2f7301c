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
                    try channel.pipeline.syncOperations.addHandler(KafkaConnectionHandler(apis: apis, maxFrameBytes: maxFrame, logger: logger))
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
    case frameTooSmall(size: Int)

    public var description: String {
        switch self {
        case .badAddress(let address): return "\(address) is not host:port"
        case .frameTooLarge(let size, let limit):
            return "a request frame of \(size) bytes is over the limit of \(limit) (--kafka-max-request-bytes)"
        case .frameTooSmall(let size):
            return "a request frame of \(size) bytes is shorter than a request header (\(KafkaFrameCutter.smallestFrame))"
        }
    }
}

/// Cuts the byte stream into request frames: int32 size, then that many bytes. A size below a
/// request header's or over the limit is an error that closes the connection, before anything is
/// buffered for it.
///
/// Why not NIO's `ByteToMessageHandler` with a decoder: it is generic over the decoder and
/// compiled in NIO's module, so it is not specialized for ours (generic metadata looked up at
/// run time, its buffering state machine and one more pipeline step per frame), as RPCTransportTCP's
/// `FrameReader` found for the jframe port. The connection handler copies each frame out anyway;
/// this cuts it straight from the bytes read and keeps only an incomplete frame's tail.
struct KafkaFrameCutter {
    let maxFrameBytes: Int
    /// Bytes of a frame not yet whole (nil when nothing is kept).
    private var kept: ByteBuffer?

    init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    /// The bytes of a frame begun and not yet whole.
    var keptBytes: Int { kept?.readableBytes ?? 0 }

    /// Takes the bytes read and calls `frame` with each request now whole (its size prefix
    /// removed), in order. Throws at the first size out of bounds; the connection is unusable then.
    mutating func cut(_ incoming: ByteBuffer, _ frame: ([UInt8]) -> Void) throws {
        var buffer: ByteBuffer
        if var kept {
            self.kept = nil
            var incoming = incoming
            kept.writeBuffer(&incoming)
            buffer = kept
        } else {
            buffer = incoming
        }
        while let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) {
            guard size >= Self.smallestFrame else { throw KafkaListenerError.frameTooSmall(size: Int(size)) }
            guard Int(size) <= maxFrameBytes else { throw KafkaListenerError.frameTooLarge(size: Int(size), limit: maxFrameBytes) }
            guard buffer.readableBytes >= 4 + Int(size) else { break }
            buffer.moveReaderIndex(forwardBy: 4)
            frame(buffer.readBytes(length: Int(size))!)
        }
        guard buffer.readableBytes > 0 else { return }
        // A long run of partial reads must not grow the buffer: drop what was read once it is the larger part.
        if buffer.readerIndex > 1024 && buffer.readerIndex > buffer.readableBytes { buffer.discardReadBytes() }
        kept = buffer
    }

    /// A request header's fixed part: api key, api version, correlation id.
    static let smallestFrame: Int32 = 8
}

/// One connection: the bytes read are cut into requests, which queue up and are answered one
/// after another. While a few are queued it stops reading, so a client that pipelines without
/// bound meets TCP backpressure rather than growing the queue.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let maxQueued = 8
    private let apis: KafkaAPIs
    private let logger: Logger
    private var cutter: KafkaFrameCutter
    private var queue = CircularBuffer<[UInt8]>()
    private var busy = false
    private var readHeld = false
    private var closed = false
    private var info = KafkaConnectionInfo(localHost: "127.0.0.1", localPort: 0)

    init(apis: KafkaAPIs, maxFrameBytes: Int, logger: Logger) {
        self.apis = apis
        self.cutter = KafkaFrameCutter(maxFrameBytes: maxFrameBytes)
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
        guard !closed else { return }
        do {
            try cutter.cut(unwrapInboundIn(data)) { queue.append($0) }
        } catch {
            // What was whole before the bad size is dropped with the connection, as Kafka does.
            closed = true
            queue.removeAll()
            errorCaught(context: context, error: error)
            return
        }
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
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        // A task and a hop back to the loop, not a promise completed by a task: the promise's
        // future is NIO's generic type, not specialized for the reply, and looked up its
        // metadata on every request (about 1,600 instructions of a batch-1 produce).
        Task {
            let reply = await apis.handle(frame, connection: info)
            if loop.inEventLoop {
                bound.value.handler.answered(reply, context: bound.value.context)
            } else {
                loop.execute { bound.value.handler.answered(reply, context: bound.value.context) }
            }
        }
    }

    /// Sends a request's reply, then takes the next request (on the connection's loop).
    private func answered(_ reply: KafkaReply, context: ChannelHandlerContext) {
        switch reply {
        case .respond(let bytes):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        case .silent:
            break
        case .close:
            context.close(promise: nil)
            return
        }
        next(context: context)
    }
}
