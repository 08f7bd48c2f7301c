import NIOCore
public import NIOPosix
public import RPCCore

/// Dials jframe connections to one TCP address.
public struct TCPClientTransport: ClientTransport {
    private let host: String
    private let port: Int
    private let limits: ConnectionLimits
    private let connectTimeout: Duration
    private let group: any EventLoopGroup

    public init(
        host: String, port: Int, limits: ConnectionLimits = .defaults, connectTimeout: Duration = .seconds(5),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.limits = limits
        self.connectTimeout = connectTimeout
        self.group = group
    }

    /// `host:port`, as the CLI and environment variables spell a server address.
    public init(address: String, limits: ConnectionLimits = .defaults) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, limits: limits)
    }

    public func connect(
        _ makeReceiver: @escaping @Sendable (any FrameChannel) -> any FrameReceiver
    ) async throws -> any FrameReceiver {
        let limits = self.limits
        let box = ReceiverBox()
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .connectTimeout(.nanoseconds(connectTimeout.wholeNanoseconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try addFrameHandlers(to: channel, limits: limits) { frameChannel in
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

import Synchronization

/// Carries the receiver out of the channel initializer.
private final class ReceiverBox: Sendable {
    private let value = Mutex<(any FrameReceiver)?>(nil)
    func set(_ receiver: any FrameReceiver) { value.withLock { $0 = receiver } }
    func get() -> (any FrameReceiver)? { value.withLock { $0 } }
}

