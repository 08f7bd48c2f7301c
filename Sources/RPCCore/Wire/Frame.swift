/// One frame of the jframe wire protocol (see Protocols/WIRE.md).
///
/// On the wire: `length` (u32, big-endian, payload bytes only) · `type` (u8) · `flags` (u8) ·
/// `stream` (u32, big-endian) · payload. The 10-byte header is read without touching JSON, so
/// demultiplexing, credit and cancellation never parse a message.
public struct Frame: Hashable, Sendable {
    public var type: FrameType
    public var flags: FrameFlags
    public var streamID: UInt32
    public var payload: [UInt8]

    public init(type: FrameType, flags: FrameFlags = [], streamID: UInt32, payload: [UInt8] = []) {
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.payload = payload
    }

    /// The size of the fixed header that precedes every payload.
    public static let headerSize = 10
}

/// What a frame carries. Unknown types are kept (and ignored by receivers) so the protocol can grow.
public struct FrameType: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Version negotiation and settings; the first frame each side sends, on stream 0.
    public static let hello = FrameType(rawValue: 0)
    /// Opens a call (method, deadline, metadata).
    public static let headers = FrameType(rawValue: 1)
    /// One message; the payload is exactly the message's JSON.
    public static let message = FrameType(rawValue: 2)
    /// Ends a call from the server with its status.
    public static let trailers = FrameType(rawValue: 3)
    /// Ends a call from the client without waiting for a status.
    public static let cancel = FrameType(rawValue: 4)
    /// Grants the peer permission to send more messages on a stream.
    public static let credit = FrameType(rawValue: 5)
    /// Liveness check; echoed with the ACK flag.
    public static let ping = FrameType(rawValue: 6)
    /// No new calls on this connection; calls up to `lastStreamId` finish.
    public static let goAway = FrameType(rawValue: 7)

    public var description: String {
        switch rawValue {
        case 0: "HELLO"
        case 1: "HEADERS"
        case 2: "MESSAGE"
        case 3: "TRAILERS"
        case 4: "CANCEL"
        case 5: "CREDIT"
        case 6: "PING"
        case 7: "GOAWAY"
        default: "TYPE_\(rawValue)"
        }
    }
}

/// Flag bits of a frame header.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The sender will send no more messages on this stream (half-close).
    public static let endStream = FrameFlags(rawValue: 0x01)
    /// This PING or HELLO is an answer.
    public static let ack = FrameFlags(rawValue: 0x02)
    /// Reserved for compressed payloads; version 1 peers never set it.
    public static let compressed = FrameFlags(rawValue: 0x04)
}
