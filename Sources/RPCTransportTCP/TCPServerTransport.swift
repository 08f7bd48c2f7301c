public import NIOCore
import NIOPosix
public import RPCCore

/// Accepts jframe connections on a TCP port.
public final class TCPServerTransport: ServerTransport {
    private let listener: SocketListener
    private let limits: ConnectionLimits

    /// - Parameters:
    ///   - port: 0 picks a free port; ``listeningAddress()`` tells which.
    ///   - limits: the same limits the ``RPCServer`` is configured with.
    public init(
        host: String = "127.0.0.1", port: Int, limits: ConnectionLimits = .defaults,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.listener = SocketListener(host: host, port: port, group: group)
        self.limits = limits
    }

    /// Listens on `host:port`, as flags and environment variables spell an address.
    public convenience init(address: String, limits: ConnectionLimits = .defaults) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, limits: limits)
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
