/// How many messages each side of a call sends.
public enum CallKind: String, Codable, Hashable, Sendable, CaseIterable {
    /// One request, one response.
    case unary
    /// One request, any number of responses.
    case serverStreaming = "server_streaming"
    /// Any number of requests, one response.
    case clientStreaming = "client_streaming"
    /// Any number each way, interleaved.
    case bidiStreaming = "bidi_streaming"

    /// The client sends exactly one message.
    public var hasSingleRequest: Bool { self == .unary || self == .serverStreaming }
    /// The server sends exactly one message on success.
    public var hasSingleResponse: Bool { self == .unary || self == .clientStreaming }
}

/// What a bearer token must allow for a method to be called, as Protocols/ declares it
/// (`"access"`). Only checked when the server checks tokens (``BearerTokenServerInterceptor``).
public enum MethodAccess: String, Codable, Hashable, Sendable, CaseIterable {
    /// No token needed: health checks, which orchestrators and load balancers call.
    case `public`
    /// Changes no stored state (consuming counts as reading: group membership and offset commits).
    case read
    /// Changes stored state.
    case write
}

/// Names one method: `package.Service/Method` on the wire.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
    /// The fully qualified service, for example `jframe.testing.v1.Echo`.
    public var service: String
    /// The method's name within its service, for example `Get`.
    public var method: String
    public var kind: CallKind
    /// The token scope it needs. Methods not generated from Protocols/ default to `write`, the
    /// safe side.
    public var access: MethodAccess

    public init(service: String, method: String, kind: CallKind, access: MethodAccess = .write) {
        self.service = service
        self.method = method
        self.kind = kind
        self.access = access
    }

    /// `service/method`, as carried in HEADERS.
    public var fullName: String { service + "/" + method }
    public var description: String { fullName }
}

/// Options of one call made by a client.
public struct CallOptions: Sendable {
    /// How long the client waits for the call to end. The server learns it from HEADERS and
    /// cancels the handler when it passes. Nil means the caller's own deadline, if it has one
    /// (see ``CallDeadline``), or none.
    public var timeout: Duration?
    /// Sent to the server in HEADERS.
    public var metadata: Metadata
    /// When the client has no connection and the last attempt failed: wait for the next attempt
    /// (up to the deadline) instead of failing at once with `UNAVAILABLE`.
    public var waitForReady: Bool

    public init(timeout: Duration? = nil, metadata: Metadata = [:], waitForReady: Bool = false) {
        self.timeout = timeout
        self.metadata = metadata
        self.waitForReady = waitForReady
    }

    public static var defaults: CallOptions { CallOptions() }
}
