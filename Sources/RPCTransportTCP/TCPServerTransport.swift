public import NIOCore
public import NIOPosix
public import NIOSSL
public import RPCCore
import RPCTransportNIO

/// Accepts jframe connections on a TCP port.
public final class TCPServerTransport: ServerTransport {
    private let listener: SocketListener
    private let limits: ConnectionLimits

    /// - Parameters:
    ///   - port: 0 picks a free port; ``listeningAddress()`` tells which.
    ///   - limits: the same limits the ``RPCServer`` is configured with.
    ///   - tls: serve TLS (``TLSFiles/makeServerContext(applicationProtocols:)``); nil: cleartext.
    public init(
        host: String = "127.0.0.1", port: Int, limits: ConnectionLimits = .defaults, tls: NIOSSLContext? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.listener = SocketListener(host: host, port: port, tls: tls, group: group)
        self.limits = limits
    }

    /// Listens on `host:port`, as flags and environment variables spell an address.
    public convenience init(address: String, limits: ConnectionLimits = .defaults, tls: NIOSSLContext? = nil) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, limits: limits, tls: tls)
    }

    /// The address bound, once listening (waits for the bind).
    public func listeningAddress() async throws -> SocketAddress {
        try await listener.listeningAddress()
    }

    public func listen(_ accept: @escaping @Sendable (any FrameChannel) -> any FrameReceiver) async throws {
        let limits = self.limits
        try await listener.run { channel in
            try addFrameHandlers(to: channel, limits: limits) { frameChannel in accept(frameChannel) }
        }
    }

    public func stopListening() {
        listener.stop()
    }
}
