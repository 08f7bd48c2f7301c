import Logging
import Synchronization
import WallTime

/// Calls methods on one server over one multiplexed connection, reconnecting with backoff.
///
/// Every call shares the connection; a new one is opened on the first call after the old one
/// closed or was told GOAWAY. When connecting fails, calls fail fast with `UNAVAILABLE` until the
/// backoff has passed (or, with `waitForReady`, wait for the next attempt within their deadline).
/// Thread-safe: one client serves any number of concurrent tasks.
public final class RPCClient: Sendable {
    private enum Connection {
        case idle
        case connecting(Task<ClientConnection, any Error>)
        case ready(ClientConnection)
        case backingOff(until: ContinuousClock.Instant, failures: Int, error: RPCError)
    }

    private let transport: any ClientTransport
    private let interceptors: [any ClientInterceptor]
    private let configuration: ClientConfiguration
    private let logger: Logger
    private let connection = Mutex(Connection.idle)

    public init(
        transport: any ClientTransport,
        interceptors: [any ClientInterceptor] = [],
        configuration: ClientConfiguration = .defaults,
        logger: Logger = Logger(label: "jframe.client")
    ) {
        self.transport = transport
        self.interceptors = interceptors
        self.configuration = configuration
        self.logger = logger
    }

    /// Closes the connection; calls in flight end with `UNAVAILABLE`. A later call reconnects.
    public func close() {
        let current = connection.withLock { state -> ClientConnection? in
            defer { state = .idle }
            if case .ready(let connection) = state { return connection }
            return nil
        }
        current?.close()
    }

    // MARK: The four call kinds

    /// One request, one response.
    public func unary<Request: Encodable & Sendable, Response: Decodable & Sendable>(
        _ request: Request, method: MethodDescriptor, responseType: Response.Type = Response.self,
        options: CallOptions = .defaults
    ) async throws -> Response {
        try await unary(
            payload: MessageCoding.encode(request), method: method, options: options,
            decode: { try MessageCoding.decode(Response.self, from: $0) })
    }

    /// `unary` for generated messages (every method of `Protocols/`), which are written and read
    /// without asking at each call whether they are generated (see `MessageCoding.encoder(for:)`).
    public func unary<Request: Encodable & Sendable & JSONMessage, Response: Decodable & Sendable & JSONMessage>(
        _ request: Request, method: MethodDescriptor, responseType: Response.Type = Response.self,
        options: CallOptions = .defaults
    ) async throws -> Response {
        try await unary(
            payload: MessageCoding.encodeGenerated(request), method: method, options: options,
            decode: { try MessageCoding.decodeGenerated(Response.self, from: $0) })
    }

    /// `unary` with the response read by a caller's own `JSONMessage` reader of a generated
    /// response's JSON: one that reads it straight into the caller's types where the generated
    /// message would be built and then copied (a rebuild's history pages, `HistoryPage`).
    public func unary<Request: Encodable & Sendable & JSONMessage, Response: Sendable & JSONMessage>(
        _ request: Request, method: MethodDescriptor, reading responseType: Response.Type, options: CallOptions = .defaults
    ) async throws -> Response {
        try await unary(
            payload: MessageCoding.encodeGenerated(request), method: method, options: options,
            decode: { try MessageCoding.decodeGenerated(Response.self, from: $0) })
    }

    private func unary<Response: Sendable>(
        payload: [UInt8], method: MethodDescriptor, options: CallOptions, decode: @escaping MessageCoding.Decoder<Response>
    ) async throws -> Response {
        try await intercepted(method, options) { context in
            let call = try await self.open(context, request: payload)
            return try await call.run {
                guard let bytes = try await call.responses.next() else {
                    throw RPCError(code: .internalError, message: "the server ended \(method) without a response")
                }
                let response = try decode(bytes)
                guard try await call.responses.next() == nil else {
                    throw RPCError(code: .internalError, message: "the server sent more than one response to \(method)")
                }
                return response
            }
        }
    }

    /// One request; `handle` reads the responses as they arrive. The call is cancelled if
    /// `handle` returns before the stream ended.
    public func serverStreaming<Request: Encodable & Sendable, Response: Decodable & Sendable, Result: Sendable>(
        _ request: Request, method: MethodDescriptor, responseType: Response.Type = Response.self,
        options: CallOptions = .defaults,
        _ handle: @escaping @Sendable (MessageStream<Response>) async throws -> Result
    ) async throws -> Result {
        let payload = try MessageCoding.encode(request)
        return try await intercepted(method, options) { context in
            let call = try await self.open(context, request: payload)
            return try await call.run { try await handle(MessageStream(call.responses)) }
        }
    }

    /// `requests` writes the requests; then the one response is returned.
    public func clientStreaming<Request: Encodable & Sendable, Response: Decodable & Sendable>(
        method: MethodDescriptor, requestType: Request.Type = Request.self, responseType: Response.Type = Response.self,
        options: CallOptions = .defaults,
        _ requests: @escaping @Sendable (MessageWriter<Request>) async throws -> Void
    ) async throws -> Response {
        try await intercepted(method, options) { context in
            let call = try await self.open(context, request: nil)
            return try await call.run {
                try await requests(MessageWriter(call.send))
                call.halfClose()
                guard let bytes = try await call.responses.next() else {
                    throw RPCError(code: .internalError, message: "the server ended \(method) without a response")
                }
                let response = try MessageCoding.decode(Response.self, from: bytes)
                _ = try await call.responses.next()
                return response
            }
        }
    }

    /// `requests` and `responses` run at once; the request side half-closes when `requests` returns.
    public func bidiStreaming<Request: Encodable & Sendable, Response: Decodable & Sendable, Result: Sendable>(
        method: MethodDescriptor, requestType: Request.Type = Request.self, responseType: Response.Type = Response.self,
        options: CallOptions = .defaults,
        requests: @escaping @Sendable (MessageWriter<Request>) async throws -> Void,
        responses: @escaping @Sendable (MessageStream<Response>) async throws -> Result
    ) async throws -> Result {
        try await intercepted(method, options) { context in
            let call = try await self.open(context, request: nil)
            return try await call.run {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await requests(MessageWriter(call.send))
                        call.halfClose()
                    }
                    let result = try await responses(MessageStream(call.responses))
                    // Responses are done: whatever the writer still does is moot.
                    group.cancelAll()
                    while let _ = try? await group.next() {}
                    return result
                }
            }
        }
    }

    // MARK: Plumbing

    private func intercepted<Result: Sendable>(
        _ method: MethodDescriptor, _ options: CallOptions,
        _ body: @escaping @Sendable (ClientContext) async throws -> Result
    ) async throws -> Result {
        let context = ClientContext(method: method, options: options)
        guard !interceptors.isEmpty else { return try await body(context) }
        return try await intercepted(context, at: 0, body)
    }

    private func intercepted<Result: Sendable>(
        _ context: ClientContext, at index: Int, _ body: @escaping @Sendable (ClientContext) async throws -> Result
    ) async throws -> Result {
        guard index < interceptors.count else { return try await body(context) }
        return try await interceptors[index].intercept(context: context) { context in
            try await self.intercepted(context, at: index + 1, body)
        }
    }

    /// The timeout to send: the call's own, or what is left of the deadline of the call being served.
    private static func timeoutMs(_ options: CallOptions) throws -> (ms: Int64, deadline: ContinuousClock.Instant)? {
        let now = ContinuousClock.now
        var deadline = options.timeout.map { now + $0 }
        if let inherited = CallDeadline.current, deadline.map({ inherited < $0 }) ?? true { deadline = inherited }
        guard let deadline else { return nil }
        let ms = (deadline - now).millisecondsRoundedUp
        guard ms > 0 else { throw RPCError(code: .deadlineExceeded, message: "the deadline passed before the call started") }
        return (ms, deadline)
    }

    private func open(_ context: ClientContext, request: [UInt8]?) async throws -> ClientCall {
        let timeout = try Self.timeoutMs(context.options)
        let connection = try await ready(waitForReady: context.options.waitForReady, deadline: timeout?.deadline)
        return try connection.open(context.method, options: context.options, timeoutMs: timeout?.ms, request: request)
    }

    /// A usable connection: the current one, or a new one.
    private func ready(waitForReady: Bool, deadline: ContinuousClock.Instant?) async throws -> ClientConnection {
        while true {
            enum Next {
                case use(ClientConnection)
                case await(Task<ClientConnection, any Error>)
                case wait(until: ContinuousClock.Instant, error: RPCError)
            }
            let next = connection.withLock { state -> Next in
                switch state {
                case .ready(let connection) where connection.isUsable:
                    return .use(connection)
                case .connecting(let task):
                    return .await(task)
                case .backingOff(let until, _, let error) where ContinuousClock.now < until:
                    return .wait(until: until, error: error)
                case .ready, .idle, .backingOff:
                    var failures = 0
                    if case .backingOff(_, let count, _) = state { failures = count }
                    let task = Task { try await self.connect(afterFailures: failures) }
                    state = .connecting(task)
                    return .await(task)
                }
            }
            switch next {
            case .use(let connection):
                return connection
            case .await(let task):
                do {
                    return try await task.value
                } catch let error as RPCError {
                    if !waitForReady { throw error }
                }
            case .wait(let until, let error):
                guard waitForReady else { throw error }
                if let deadline, deadline < until {
                    throw RPCError(code: .deadlineExceeded, message: "the deadline passed while waiting to reconnect: \(error.message)")
                }
                try await Task.sleep(until: until)
            }
        }
    }

    private func connect(afterFailures failures: Int) async throws -> ClientConnection {
        let limits = configuration.limits
        let logger = self.logger
        do {
            let receiver = try await transport.connect { channel in
                ClientConnection(channel: channel, limits: limits, logger: logger)
            }
            guard let connection = receiver as? ClientConnection else {
                throw RPCError(code: .internalError, message: "the transport returned a foreign receiver")
            }
            self.connection.withLock { $0 = .ready(connection) }
            return connection
        } catch {
            let backoff = configuration.backoff(afterFailures: failures + 1)
            let failure = RPCError(code: .unavailable, message: "cannot connect to the server: \(error)")
            logger.debug("connect failed", metadata: ["error": "\(error)", "backoff": "\(backoff)"])
            self.connection.withLock {
                $0 = .backingOff(until: .now + backoff, failures: failures + 1, error: failure)
            }
            throw failure
        }
    }
}
