import Synchronization

/// One call being served, as a router handler sees it: the requests to read and the way to answer.
public final class ServerCall: Sendable {
    public let streamID: UInt32
    public let method: MethodDescriptor
    /// The request messages, as raw JSON bytes.
    public let requests: InboundMessages
    let outboundCredit: OutboundCredit
    /// Strong: a handler may outlive the connection; the cycle through the call table ends when the call does.
    private let connection: ServerConnection
    private let state: Mutex<CallState>

    struct CallState {
        /// The handler's task, cancelled by CANCEL, the deadline, or the connection closing.
        var task: Task<Void, Never>?
        /// The response of a single-response call, sent with the status when the handler returns.
        var singleResponse: [UInt8]?
        /// Request messages the client may still send before it needs more credit.
        var inboundCredit: Int = 0
        var deadlineTimer: (any ScheduledTimer)?
    }

    init(streamID: UInt32, method: MethodDescriptor, connection: ServerConnection, limits: ConnectionLimits, peerCredit: Int) {
        self.streamID = streamID
        self.method = method
        self.connection = connection
        self.outboundCredit = OutboundCredit(initial: peerCredit)
        self.state = Mutex(CallState(inboundCredit: limits.initialCredit))
        if method.kind.hasSingleRequest {
            self.requests = InboundMessages()
        } else {
            self.requests = InboundMessages(window: ReceiveWindow(limits)) { [connection] n in
                connection.grantCredit(n, streamID: streamID)
            }
        }
    }

    /// Sends one response message, waiting for credit if the client is behind.
    /// Throws `CANCELLED` once the call is over.
    @Sendable public func send(_ message: [UInt8]) async throws {
        if let refusal = connection.oversizedResponse(message.count) { throw refusal }
        try await outboundCredit.acquire()
        guard connection.write([Frame(type: .message, streamID: streamID, payload: message)], for: self) else {
            throw RPCError(code: .cancelled, message: "the call is over")
        }
    }

    /// Sets the one response of a unary or client-streaming call; it is sent with the OK status,
    /// in the same flush, when the handler returns.
    public func respond(_ message: [UInt8]) {
        state.withLock { $0.singleResponse = message }
    }

    /// Reads the one request of a unary or server-streaming call.
    public func singleRequest<Request>(_ decode: MessageCoding.Decoder<Request>) async throws -> Request {
        guard let bytes = try await requests.next() else {
            throw RPCError(code: .unimplemented, message: "\(method.fullName) takes one request message; none was sent")
        }
        let request = try decode(bytes)
        guard try await requests.next() == nil else {
            throw RPCError(
                code: .unimplemented, message: "\(method.fullName) takes one request message; more were sent")
        }
        return request
    }

    func withState<T: Sendable>(_ body: (inout CallState) -> T) -> T { state.withLock { body(&$0) } }
}
