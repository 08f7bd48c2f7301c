import NIOCore
public import NIOPosix
public import NIOSSL
public import RPCCore
import RPCTransportNIO
import Synchronization
import WallTime

/// Dials jframe connections to one TCP address.
public struct TCPClientTransport: ClientTransport {
    private let host: String
    private let port: Int
    private let limits: ConnectionLimits
    private let connectTimeout: Duration
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?

    /// - Parameter tls: speak TLS (``TLSTrust/makeClientContext()``): the server's certificate
    ///   must chain to a trusted root and name `host` (a DNS name, or an IP address in its SAN).
    public init(
        host: String, port: Int, limits: ConnectionLimits = .defaults, connectTimeout: Duration = .seconds(5),
        tls: NIOSSLContext? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.limits = limits
        self.connectTimeout = connectTimeout
        self.tls = tls
        self.group = group
    }

    /// `host:port`, as the CLI and environment variables spell a server address.
    public init(address: String, limits: ConnectionLimits = .defaults, tls: NIOSSLContext? = nil) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, limits: limits, tls: tls)
    }

    public func connect(
        _ makeReceiver: @escaping @Sendable (any FrameChannel) -> any FrameReceiver
    ) async throws -> any FrameReceiver {
        let limits = self.limits
        let tls = self.tls
        // SNI and name checks take a DNS name; an IP address is checked against the SAN's IPs.
        let serverHostname = host.isIPAddress ? nil : host
        let box = ReceiverBox()
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .connectTimeout(.nanoseconds(connectTimeout.wholeNanoseconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                    }
                    try addFrameHandlers(to: channel, limits: limits, onActivity: nil) { frameChannel in
                        let receiver = makeReceiver(frameChannel)
                        box.set(receiver)
                        return receiver
                    }
                }
            }
        _ = try await bootstrap.connect(host: host, port: port).get()
        guard let receiver = box.get() else {
            throw RPCError(code: .internalError, message: "the connection was made without a receiver")
        }
        return receiver
    }
}

extension String {
    /// An IPv4 or IPv6 literal, which TLS may not send as a server name.
    fileprivate var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}

/// Carries the receiver out of the channel initializer.
private final class ReceiverBox: Sendable {
    private let value = Mutex<(any FrameReceiver)?>(nil)
    func set(_ receiver: any FrameReceiver) { value.withLock { $0 = receiver } }
    func get() -> (any FrameReceiver)? { value.withLock { $0 } }
}
