import Logging
import ServiceLifecycle
import Synchronization

/// Serves registered services on a transport: the piece a binary runs in its `ServiceGroup`.
///
/// `run()` accepts connections until graceful shutdown (SIGTERM through ServiceLifecycle, or
/// ``beginGracefulShutdown()``). Then it stops accepting, sends every connection GOAWAY so no new
/// call starts, lets the calls in flight finish for up to `shutdownGracePeriod`, cancels what is
/// left, and returns once every connection is closed.
public final class RPCServer: Service, Sendable {
    private struct State {
        var connections: [Int: ServerConnection] = [:]
        var nextConnectionID = 0
        var shuttingDown = false
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    private let transport: any ServerTransport
    private let router: RPCRouter
    private let interceptors: [any ServerInterceptor]
    private let configuration: ServerConfiguration
    private let logger: Logger
    private let state = Mutex(State())

    public convenience init(
        transport: any ServerTransport,
        services: [any RPCService],
        interceptors: [any ServerInterceptor] = [],
        configuration: ServerConfiguration = .defaults,
        logger: Logger = Logger(label: "jframe.server")
    ) {
        var router = RPCRouter()
        for service in services { service.register(with: &router) }
        self.init(
            transport: transport, router: router, interceptors: interceptors, configuration: configuration,
            logger: logger)
    }

    public init(
        transport: any ServerTransport,
        router: RPCRouter,
        interceptors: [any ServerInterceptor] = [],
        configuration: ServerConfiguration = .defaults,
        logger: Logger = Logger(label: "jframe.server")
    ) {
        self.transport = transport
        self.router = router
        self.interceptors = interceptors
        self.configuration = configuration
        self.logger = logger
    }

    /// The methods this server serves.
    public var methods: [MethodDescriptor] { router.methods }

    /// The number of connections open now.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    public func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                try await transport.listen { [self] channel in accept(channel) }
            } onGracefulShutdown: {
                self.beginGracefulShutdown()
            }
        } catch {
            closeAll()
            throw error
        }
        await drainConnections()
    }

    /// Stops accepting and asks every connection to finish its calls; `run()` returns when done.
    public func beginGracefulShutdown() {
        let connections = state.withLock { state -> [ServerConnection] in
            guard !state.shuttingDown else { return [] }
            state.shuttingDown = true
            return Array(state.connections.values)
        }
        logger.info("graceful shutdown: no new calls", metadata: ["connections": "\(connections.count)"])
        transport.stopListening()
        for connection in connections { connection.beginGracefulShutdown() }
    }

    private func accept(_ channel: any FrameChannel) -> any FrameReceiver {
        let limit = configuration.maxConnections
        let admitted = state.withLock { state -> ServerConnection? in
            guard !state.shuttingDown, state.connections.count < limit else { return nil }
            state.nextConnectionID += 1
            let connection = ServerConnection(
                id: state.nextConnectionID, channel: channel, router: router, interceptors: interceptors,
                configuration: configuration, logger: logger
            ) { [weak self] connection in self?.connectionClosed(connection) }
            state.connections[connection.id] = connection
            return connection
        }
        guard let connection = admitted else {
            logger.warning(
                "connection refused: the limit of \(limit) connections is reached", metadata: ["connection.peer": "\(channel.peerDescription)"])
            channel.write(
                .control(
                    .goAway, streamID: 0,
                    GoAway(lastStreamId: 0, code: .resourceExhausted, message: "the server's limit of \(limit) connections is reached")))
            channel.close()
            return RefusedConnection()
        }
        connection.start()
        return connection
    }

    private func connectionClosed(_ connection: ServerConnection) {
        let drained = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.connections[connection.id] = nil
            guard state.connections.isEmpty else { return [] }
            defer { state.drained.removeAll() }
            return state.drained
        }
        for waiter in drained { waiter.resume() }
    }

    /// Waits for every connection to close, for at most the grace period; then closes the rest.
    private func drainConnections() async {
        let grace = configuration.shutdownGracePeriod
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let done = self.state.withLock { state -> Bool in
                        if state.connections.isEmpty { return true }
                        state.drained.append(continuation)
                        return false
                    }
                    if done { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: grace)
                return false
            }
            let drainedInTime = await group.next() ?? false
            if !drainedInTime {
                self.logger.warning("grace period of \(grace) over: cancelling the calls still running")
                self.closeAll()
                _ = await group.next()
            }
            group.cancelAll()
        }
    }

    private func closeAll() {
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { connection.forceClose() }
    }
}

/// The receiver of a connection refused at accept: it ignores what arrives before the close.
private final class RefusedConnection: FrameReceiver {
    func receive(_ frame: Frame) {}
    func receiveOversizedFrame(type: FrameType, streamID: UInt32, length: Int) {}
    func receiveUnrecoverable(_ error: RPCError) {}
    func connectionClosed() {}
}
