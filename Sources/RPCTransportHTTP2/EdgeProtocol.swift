import RPCCore

/// The protocol a request speaks, told by its `content-type`.
enum EdgeProtocol: Hashable, Sendable {
    /// gRPC over HTTP/2: 5-byte prefixed messages, status in trailers. Message bodies are JSON
    /// whatever the subtype says (`application/grpc` is what every gRPC library sends).
    case grpc(contentType: String)
    /// Connect unary: the body is the one request message; the reply is the message or an error body.
    case connectUnary
    /// Connect streaming: enveloped messages and an end-of-stream message in the body.
    case connectStreaming

    /// nil for a content type the edge does not serve (the caller answers 415).
    init?(contentType: String?) {
        guard let contentType else { return nil }
        // Parameters such as `; charset=utf-8` do not change the protocol.
        let mediaType = contentType.split(separator: ";", maxSplits: 1)[0].trimmingSpaces.lowercased()
        switch mediaType {
        case "application/grpc", "application/grpc+json": self = .grpc(contentType: mediaType)
        case "application/json": self = .connectUnary
        case "application/connect+json": self = .connectStreaming
        default: return nil
        }
    }

    /// Whether request and response bodies are 5-byte prefixed messages.
    var isEnveloped: Bool { self != .connectUnary }

    /// The response content type.
    var responseContentType: String {
        switch self {
        case .grpc(let contentType): contentType
        case .connectUnary: "application/json"
        case .connectStreaming: "application/connect+json"
        }
    }

    static let supportedContentTypes = "application/grpc, application/grpc+json, application/json, application/connect+json"
}

/// gRPC's `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n), as whole milliseconds
/// rounded up (a 1 ns deadline is still a deadline, not none).
enum GRPCTimeout {
    static func milliseconds(_ text: String) -> Int64? {
        guard let unit = text.last, text.count >= 2, text.count <= 9 else { return nil }
        let digits = text.dropLast()
        guard digits.allSatisfy(\.isASCIIDigit), let value = Int64(digits) else { return nil }
        let nanosecondsPerUnit: Int64
        switch unit {
        case "H": nanosecondsPerUnit = 3_600_000_000_000
        case "M": nanosecondsPerUnit = 60_000_000_000
        case "S": nanosecondsPerUnit = 1_000_000_000
        case "m": nanosecondsPerUnit = 1_000_000
        case "u": nanosecondsPerUnit = 1_000
        case "n": nanosecondsPerUnit = 1
        default: return nil
        }
        let (nanoseconds, overflow) = value.multipliedReportingOverflow(by: nanosecondsPerUnit)
        if overflow { return Int64.max / 1_000_000 }
        return (nanoseconds + 999_999) / 1_000_000
    }
}

/// gRPC's `grpc-message` is percent-encoded UTF-8: bytes outside 0x20-0x7E and '%' are escaped.
enum PercentEncoding {
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

/// Connect's names for status codes (gRPC's in snake case, `canceled` with one l) and the HTTP
/// status of a unary error.
enum ConnectCode {
    static func name(_ code: StatusCode) -> String {
        code == .cancelled ? "canceled" : code.name.lowercased()
    }

    static func httpStatus(_ code: StatusCode) -> Int {
        switch code {
        case .cancelled: 499
        case .invalidArgument, .failedPrecondition, .outOfRange: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists, .aborted: 409
        case .permissionDenied: 403
        case .resourceExhausted: 429
        case .unimplemented: 501
        case .unavailable: 503
        case .unauthenticated: 401
        default: 500  // unknown, internal, data loss
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
