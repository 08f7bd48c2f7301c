public import NIOCore
public import NIOPosix
public import NIOSSL
public import RPCCore
import RPCTransportNIO

/// Accepts jframe connections on a TCP port.
public final class TCPServerTransport: ServerTransport {
    private let listener: SocketListener
    private let limits: ConnectionLimits
    private let onActivity: (@Sendable () -> Void)?

    /// - Parameters:
    ///   - port: 0 picks a free port; ``listeningAddress()`` tells which.
    ///   - limits: the same limits the ``RPCServer`` is configured with.
    ///   - tls: serve TLS (``TLSFiles/makeServerContext(applicationProtocols:)``); nil: cleartext.
    ///   - onActivity: called on the event loop for every frame that arrives or leaves (idle
    ///     polling keeps the CPUs awake after each); nil costs nothing.
    public init(
        host: String = "127.0.0.1", port: Int, limits: ConnectionLimits = .defaults, tls: NIOSSLContext? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, onActivity: (@Sendable () -> Void)? = nil
    ) {
        self.listener = SocketListener(host: host, port: port, tls: tls, group: group)
        self.limits = limits
        self.onActivity = onActivity
    }

    /// Listens on `host:port`, as flags and environment variables spell an address.
    public convenience init(
        address: String, limits: ConnectionLimits = .defaults, tls: NIOSSLContext? = nil, onActivity: (@Sendable () -> Void)? = nil
    ) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, limits: limits, tls: tls, onActivity: onActivity)
    }

    /// The address bound, once listening (waits for the bind).
    public func listeningAddress() async throws -> SocketAddress {
        try await listener.listeningAddress()
    }

    public func listen(_ accept: @escaping @Sendable (any FrameChannel) -> any FrameReceiver) async throws {
        let (limits, onActivity) = (self.limits, self.onActivity)
        try await listener.run { channel in
            try addFrameHandlers(to: channel, limits: limits, onActivity: onActivity) { frameChannel in accept(frameChannel) }
        }
    }

    public func stopListening() {
        listener.stop()
    }
}
