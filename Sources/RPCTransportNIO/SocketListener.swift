import Logging
public import NIOCore
import NIOPosix
public import NIOSSL
import Synchronization

/// A listening TCP socket whose accepted connections each get the pipeline `initializeChild`
/// builds: what every server transport shares (the jframe port and the HTTP/2 edge), so binding,
/// reporting the bound address and stopping are written once.
public final class SocketListener: Sendable {
    private struct State {
        var serverChannel: (any Channel)?
        var stopped = false
        var addressWaiters: [CheckedContinuation<SocketAddress, any Error>] = []
        var bindError: (any Error)?
    }

    private let host: String
    private let port: Int
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?
    private let state = Mutex(State())

    /// - Parameters:
    ///   - port: 0 picks a free port; ``listeningAddress()`` tells which.
    ///   - tls: when given, every accepted connection speaks TLS first, below whatever
    ///     `initializeChild` adds (the protocol handlers never see the difference).
    public init(
        host: String, port: Int, tls: NIOSSLContext? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.group = group
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

    /// Binds and accepts until ``stop()`` or cancellation. `initializeChild` runs on each
    /// accepted channel's event loop, before it becomes active.
    public func run(initializeChild: @escaping @Sendable (any Channel) throws -> Void) async throws {
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptPacer(logger: Logger(label: "listener")))
                }
            }
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try initializeChild(channel)
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

    /// Stops accepting; open connections stay until their owners close them.
    public func stop() {
        let channel = state.withLock { state -> (any Channel)? in
            state.stopped = true
            return state.serverChannel
        }
        channel?.close(promise: nil)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketListener {
    /// Once bound, prints `{"event":EVENT,"service":SERVICE,"host":…,"port":…}` on stdout (how
    /// scripts, tests and `cqrs dev` find a port-0 server's extra ports) and logs `describe`'s
    /// line for people.
    public func announce(event: String, service: String, logger: Logger, describe: (String, Int) -> String) async throws {
        let address = try await listeningAddress()
        let host = address.ipAddress ?? "?"
        let port = address.port ?? 0
        logger.info("\(describe(host, port))")
        print(#"{"event":"\#(event)","service":"\#(service)","host":"\#(host)","port":\#(port)}"#)
        fflush(nil)
    }
}
