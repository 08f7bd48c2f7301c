public import Logging
public import NIOCore
public import NIOPosix
public import NIOSSL
public import RPCCore
import RPCTransportNIO

/// Accepts HTTP/2 connections (cleartext, prior knowledge) and serves gRPC and Connect requests
/// through the RPC core: give it to an ``RPCServer`` with the same router and interceptors as the
/// TCP port, and every method is served on both with the same handlers.
public final class HTTP2ServerTransport: ServerTransport {
    private let listener: SocketListener
    private let limits: ConnectionLimits
    private let logger: Logger

    /// - Parameters:
    ///   - port: 0 picks a free port; ``listeningAddress()`` tells which.
    ///   - limits: the server's limits: message size, metadata bytes, concurrent calls (advertised
    ///     as SETTINGS_MAX_CONCURRENT_STREAMS) and the time a client has to send its preface.
    public init(
        host: String = "127.0.0.1", port: Int, limits: ConnectionLimits = .defaults,
        tls: NIOSSLContext? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "jframe.http2")
    ) {
        self.listener = SocketListener(host: host, port: port, tls: tls, group: group)
        self.limits = limits
        self.logger = logger
    }

    /// The address bound, once listening (waits for the bind).
    public func listeningAddress() async throws -> SocketAddress {
        try await listener.listeningAddress()
    }

    public func listen(_ accept: @escaping @Sendable (any FrameChannel) -> any FrameReceiver) async throws {
        let limits = self.limits
        let logger = self.logger
        try await listener.run { channel in
            let connection = HTTP2EdgeConnection(channel: channel, limits: limits, logger: logger)
            try channel.pipeline.syncOperations.addHandler(HTTP2EdgeHandler(connection: connection) { accept(connection) })
        }
    }

    public func stopListening() {
        listener.stop()
    }
}

/// Feeds the socket's bytes to the connection's HTTP/2 session.
final class HTTP2EdgeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: HTTP2EdgeConnection
    private let makeReceiver: () -> any FrameReceiver

    init(connection: HTTP2EdgeConnection, makeReceiver: @escaping () -> any FrameReceiver) {
        self.connection = connection
        self.makeReceiver = makeReceiver
    }

    func channelActive(context: ChannelHandlerContext) {
        do {
            try connection.start(receiver: makeReceiver())
        } catch {
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.inactive()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.read(unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension HTTP2ServerTransport {
    /// Listens on `host:port`, as flags and environment variables spell an address.
    /// - Parameter tls: serve TLS; its context should offer `h2` by ALPN, as gRPC clients require.
    public convenience init(address: String, limits: ConnectionLimits = .defaults, tls: NIOSSLContext? = nil) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, limits: limits, tls: tls)
    }
}
