public import NIOCore
import NIOPosix
public import RPCCore
import Synchronization

/// Accepts jframe connections on a TCP port.
public final class TCPServerTransport: ServerTransport {
    private struct State {
        var serverChannel: (any Channel)?
        var stopped = false
        var addressWaiters: [CheckedContinuation<SocketAddress, any Error>] = []
        var bindError: (any Error)?
    }

    private let host: String
    private let port: Int
    private let limits: ConnectionLimits
    private let group: any EventLoopGroup
    private let state = Mutex(State())

    /// - Parameters:
    ///   - port: 0 picks a free port; ``listeningAddress()`` tells which.
    ///   - limits: the same limits the ``RPCServer`` is configured with.
    public init(
        host: String = "127.0.0.1", port: Int, limits: ConnectionLimits = .defaults,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.limits = limits
        self.group = group
    }

    /// Listens on `host:port`, as flags and environment variables spell an address.
    public convenience init(address: String, limits: ConnectionLimits = .defaults) throws {
        let (host, port) = try parseAddress(address)
        self.init(host: host, port: port, limits: limits)
    }

    /// The address bound, once listening (waits for the bind).
    public func listeningAddress() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<SocketAddress, any Error>? in
                if let error = state.bindError { return .failure(error) }
                if let address = state.serverChannel?.localAddress { return .success(address) }
                state.addressWaiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    public func listen(_ accept: @escaping @Sendable (any FrameChannel) -> any FrameReceiver) async throws {
        let limits = self.limits
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try addFrameHandlers(to: channel, limits: limits) { frameChannel in accept(frameChannel) }
                }
            }
        let serverChannel: any Channel
        do {
            serverChannel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            let waiters = state.withLock { state in
                state.bindError = error
                defer { state.addressWaiters.removeAll() }
                return state.addressWaiters
            }
            for waiter in waiters { waiter.resume(throwing: error) }
            throw error
        }
        let (waiters, stopNow) = state.withLock { state in
            state.serverChannel = serverChannel
            defer { state.addressWaiters.removeAll() }
            return (state.addressWaiters, state.stopped)
        }
        if let address = serverChannel.localAddress {
            for waiter in waiters { waiter.resume(returning: address) }
        }
        if stopNow { serverChannel.close(promise: nil) }
        try await withTaskCancellationHandler {
            try await serverChannel.closeFuture.get()
        } onCancel: {
            serverChannel.close(promise: nil)
        }
    }

    public func stopListening() {
        let channel = state.withLock { state -> (any Channel)? in
            state.stopped = true
            return state.serverChannel
        }
        channel?.close(promise: nil)
    }
}
