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
    /// A logger carrying the call's metadata (`rpc.method`, `rpc.request_id`).
    public var logger: Logger

    public init(
        method: MethodDescriptor, metadata: Metadata = [:], deadline: ContinuousClock.Instant? = nil,
        peer: String = "unknown", logger: Logger
    ) {
        self.method = method
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
        self.requestID = metadata[Metadata.requestIDKey]
        self.logger = logger
        self.logger[metadataKey: "rpc.method"] = "\(method.fullName)"
        if let requestID { self.logger[metadataKey: "rpc.request_id"] = "\(requestID)" }
    }
}
