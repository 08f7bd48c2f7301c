/// The limits of one connection, the same for both ends. Every limit of the protocol lives here,
/// with gRPC's value where gRPC has one, so they are configured in one place and advertised in HELLO.
public struct ConnectionLimits: Sendable, Hashable {
    /// The largest frame payload accepted, in bytes (gRPC's default receive limit: 4 MiB). A larger
    /// frame on a stream fails that stream with `RESOURCE_EXHAUSTED`; the connection goes on.
    public var maxFrameBytes: Int = 4 * 1024 * 1024
    /// A frame larger than this is not skipped but ends the connection (GOAWAY): past this size
    /// the sender is broken or hostile, and skipping would let it tie the connection up.
    public var maxSkippableFrameBytes: Int = 64 * 1024 * 1024
    /// The largest HEADERS payload (method, deadline and metadata), in bytes.
    public var maxHeadersBytes: Int = 8 * 1024
    /// Calls open at once on one connection; one more is refused with `RESOURCE_EXHAUSTED`.
    public var maxConcurrentCalls: Int = 1024
    /// Messages a peer may send on a new stream before it needs CREDIT.
    public var initialCredit: Int = 64
    /// The bytes of messages a stream's reader lets its sender have in flight once it has seen
    /// their size: the window grows past `initialCredit` for small messages, up to this many
    /// bytes (see ``ReceiveWindow``); 0 keeps every window at `initialCredit` messages. 1 MiB, as
    /// grpc-java's default flow-control window.
    public var streamWindowBytes: Int = 1024 * 1024
    /// A frame that has started to arrive must be whole within this time, or the connection is
    /// closed: it stops a slow sender from holding a connection with a partial frame.
    public var frameReadTimeout: Duration = .seconds(10)

    public init() {}

    public static var defaults: ConnectionLimits { ConnectionLimits() }
}

/// The settings of a server beyond one connection's limits.
public struct ServerConfiguration: Sendable {
    public var limits: ConnectionLimits = .defaults
    /// Connections open at once; one more is sent GOAWAY(`RESOURCE_EXHAUSTED`) and closed.
    public var maxConnections: Int = 1024
    /// A connection with no call open for this long is closed with GOAWAY.
    public var idleTimeout: Duration = .seconds(300)
    /// A new connection must send HELLO within this time.
    public var helloTimeout: Duration = .seconds(10)
    /// A connection silent for this long is sent a PING ...
    public var keepaliveInterval: Duration = .seconds(30)
    /// ... and closed if no answer comes within this time.
    public var keepaliveTimeout: Duration = .seconds(10)
    /// On graceful shutdown, calls in flight get this long to finish before they are cancelled.
    public var shutdownGracePeriod: Duration = .seconds(10)

    public init() {}

    public static var defaults: ServerConfiguration { ServerConfiguration() }
}
