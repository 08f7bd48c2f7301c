import Logging

/// What a handler knows about the call it serves.
public struct ServerContext: Sendable {
    public var method: MethodDescriptor
    /// The metadata the client sent in HEADERS.
    public var metadata: Metadata
    /// When the client stops waiting; the handler's task is cancelled then.
    public var deadline: ContinuousClock.Instant?
    /// The client's address.
    public var peer: String
    /// The request id from `x-request-id`, when the client sent one.
    public var requestID: String?
    /// The connection's logger, without the call's metadata (cheap to carry on every call).
    public var baseLogger: Logger
    /// Who is calling, once an authentication interceptor has checked: the name of the token.
    public var principal: String?
    /// What the caller's token allows, once an authentication interceptor has checked; nil when
    /// the server takes calls without tokens.
    public var scope: AccessTokens.Scope?

    /// The call's metadata for log lines: `rpc.method`, and `rpc.request_id` when the client sent one.
    public var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["rpc.method": .string(method.fullName)]
        if let requestID { metadata["rpc.request_id"] = .string(requestID) }
        if let principal { metadata["rpc.principal"] = .string(principal) }
        return metadata
    }

    /// A logger carrying the call's metadata. Built on each access: setting handler metadata
    /// costs more than a whole call's framing, so calls that never log never pay it.
    public var logger: Logger {
        var logger = baseLogger
        for (key, value) in logMetadata { logger[metadataKey: key] = value }
        return logger
    }

    public init(
        method: MethodDescriptor, metadata: Metadata = [:], deadline: ContinuousClock.Instant? = nil,
        peer: String = "unknown", logger: Logger
    ) {
        self.method = method
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
        self.requestID = metadata[Metadata.requestIDKey]
        self.baseLogger = logger
    }
}
