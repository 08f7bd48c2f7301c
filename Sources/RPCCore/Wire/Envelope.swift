/// The JSON payloads of the control frames. Their JSON Schemas are in
/// `Protocols/jframe.rpc.v1.json`; these types mirror them by hand because the RPC core cannot
/// depend on code generated for the services it carries.

/// HELLO: the protocol versions and limits of one side.
public struct Hello: Codable, Hashable, Sendable {
    /// The least `maxFrameBytes` a side may announce (the Hello schema's minimum).
    public static let minimumMaxFrameBytes = 1024

    /// Sent by the client: the versions it speaks, preferred first.
    public var versions: [Int]?
    /// Sent by the server: the version chosen for this connection.
    public var version: Int?
    /// The largest payload this side accepts in one frame, in bytes.
    public var maxFrameBytes: Int
    /// The messages the peer may send on a new stream before it needs CREDIT.
    public var initialCredit: Int
    /// Sent by the server: how many calls may be open at once on this connection.
    public var maxConcurrentCalls: Int?
    /// The implementation, for logs: `jframe-swift/1`.
    public var agent: String?

    public init(
        versions: [Int]? = nil, version: Int? = nil, maxFrameBytes: Int, initialCredit: Int,
        maxConcurrentCalls: Int? = nil, agent: String? = nil
    ) {
        self.versions = versions
        self.version = version
        self.maxFrameBytes = maxFrameBytes
        self.initialCredit = initialCredit
        self.maxConcurrentCalls = maxConcurrentCalls
        self.agent = agent
    }

    /// The protocol versions this implementation speaks.
    public static let supportedVersions = [1]
    public static let agentName = "jframe-swift/1"
}

/// HEADERS: opens a call.
public struct CallHeaders: Codable, Hashable, Sendable {
    /// `package.Service/Method`.
    public var method: String
    /// The time the client will wait, relative to when it sent this frame, in milliseconds.
    public var timeoutMs: Int64?
    public var metadata: Metadata?

    public init(method: String, timeoutMs: Int64? = nil, metadata: Metadata? = nil) {
        self.method = method
        self.timeoutMs = timeoutMs
        self.metadata = metadata
    }

    /// The first rule of WIRE.md's HEADERS these headers break, or nil: a negative `timeoutMs`
    /// (the schema's minimum is 0); a metadata key outside `[a-z0-9._-]`, empty, or in the
    /// reserved `jframe-` space; a `-bin` value that is not base64. The call is refused with
    /// INVALID_ARGUMENT rather than served with metadata a peer may read differently.
    public var ruleBroken: String? {
        if let timeoutMs, timeoutMs < 0 { return "timeoutMs must be 0 or more, not \(timeoutMs)" }
        for (key, value) in metadata ?? [:] {
            guard !key.isEmpty, key.utf8.allSatisfy(Self.isKeyByte) else {
                return "metadata key '\(key)' must be lowercase ASCII letters, digits, '-', '_' or '.'"
            }
            if key.hasPrefix("jframe-") { return "metadata key '\(key)' is in the reserved jframe- space" }
            if key.hasSuffix("-bin"), !Self.isBase64(value) { return "metadata '\(key)' ends in -bin but its value is not base64" }
        }
        return nil
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    /// Standard base64, padded or not (gRPC accepts both).
    private static func isBase64(_ text: String) -> Bool {
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return false }
            guard
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
            else { return false }
        }
        return padding <= 2 && (padding == 0 || text.utf8.count % 4 == 0)
    }
}

/// TRAILERS: the status that ends a call.
public struct Trailers: Codable, Hashable, Sendable {
    public var code: Int
    public var message: String?
    public var details: [ErrorDetail]?
    public var metadata: Metadata?

    public init(code: Int, message: String? = nil, details: [ErrorDetail]? = nil, metadata: Metadata? = nil) {
        self.code = code
        self.message = message
        self.details = details
        self.metadata = metadata
    }

    public init(_ error: RPCError) {
        self.init(
            code: error.code.rawValue, message: error.message,
            details: error.details.isEmpty ? nil : error.details,
            metadata: error.metadata.isEmpty ? nil : error.metadata)
    }

    /// The status as an error, or nil when it is OK.
    public var error: RPCError? {
        guard code != 0 else { return nil }
        return RPCError(
            code: StatusCode(rawValue: code), message: message ?? "", details: details ?? [],
            metadata: metadata ?? [:])
    }

    /// The encoded trailers of a call that succeeded without trailing metadata: the common case,
    /// kept as constant bytes so a successful unary reply costs one JSON encoding, not two.
    public static let okBytes: [UInt8] = Array(#"{"code":0}"#.utf8)
}

/// CANCEL: the client abandons a call; `code` says why (1 CANCELLED or 4 DEADLINE_EXCEEDED).
public struct Cancel: Codable, Hashable, Sendable {
    public var code: Int
    public init(code: StatusCode) { self.code = code.rawValue }
}

/// CREDIT: the receiver of a stream may be sent `n` more messages.
public struct Credit: Codable, Hashable, Sendable {
    public var n: Int
    public init(n: Int) { self.n = n }
}

/// GOAWAY: no new calls; calls with stream ids up to `lastStreamId` are finished.
public struct GoAway: Codable, Hashable, Sendable {
    public var lastStreamId: UInt32
    public var code: Int
    public var message: String?

    public init(lastStreamId: UInt32, code: StatusCode, message: String? = nil) {
        self.lastStreamId = lastStreamId
        self.code = code.rawValue
        self.message = message
    }
}

extension Frame {
    /// A control frame whose payload is `envelope` as JSON.
    public static func control<Envelope: Encodable>(
        _ type: FrameType, streamID: UInt32, flags: FrameFlags = [], _ envelope: Envelope
    ) -> Frame {
        // Encoding these small value types cannot fail; an empty payload would be rejected by the peer.
        let payload = (try? MessageCoding.encode(envelope)) ?? []
        return Frame(type: type, flags: flags, streamID: streamID, payload: payload)
    }

    /// TRAILERS ending `streamID` with `error`'s status, or OK when `error` is nil.
    public static func trailers(streamID: UInt32, error: RPCError?) -> Frame {
        guard let error else { return Frame(type: .trailers, streamID: streamID, payload: Trailers.okBytes) }
        return .control(.trailers, streamID: streamID, Trailers(error))
    }

    /// Decodes this frame's payload as a control envelope.
    public func envelope<Envelope: Decodable>(_ type: Envelope.Type) throws -> Envelope {
        try MessageCoding.decode(Envelope.self, from: payload)
    }
}
