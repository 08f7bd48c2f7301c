/// Hand-written JSON for the envelopes on every call's path (HEADERS, CREDIT).
///
/// Why: Foundation's JSONDecoder spent more time on a 60-byte HEADERS payload than on the
/// 200-byte request it announces (a fifth of a server's CPU at 64 calls in flight). These
/// envelopes have three members of known types, so a direct scanner is exact and cheap. It is
/// strict: malformed JSON, a member of the wrong type or trailing data is an error; unknown
/// members are skipped, as the protocol requires. Other envelopes use Codable.
extension CallHeaders {
    /// Decodes a HEADERS payload. Throws `INVALID_ARGUMENT` naming what is wrong.
    public init(jsonBytes: [UInt8]) throws {
        var method: String?
        var timeoutMs: Int64?
        var metadata: Metadata?
        var scanner = JSONScanner(jsonBytes)
        do {
            try scanner.fields { scanner, key in
                switch key {
                case "method": method = try scanner.string()
                case "timeoutMs": timeoutMs = try scanner.integer()
                case "metadata":
                    var pairs = Metadata()
                    try scanner.object { scanner, key in pairs[key] = try scanner.string() }
                    metadata = pairs
                default: try scanner.skipValue()
                }
            }
            try scanner.end()
        } catch let failure as JSONScanner.Failure {
            throw RPCError(code: .invalidArgument, message: "invalid CallHeaders: \(failure)")
        }
        guard let method else { throw RPCError(code: .invalidArgument, message: "invalid CallHeaders: missing method") }
        self.init(method: method, timeoutMs: timeoutMs, metadata: metadata)
    }

    /// The HEADERS payload.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter(capacity: 48 + method.utf8.count)
        writer.raw(#"{"method":"#)
        writer.string(method)
        if let timeoutMs {
            writer.raw(#","timeoutMs":"#)
            writer.integer(timeoutMs)
        }
        if let metadata, !metadata.isEmpty {
            writer.raw(#","metadata":{"#)
            for (index, (key, value)) in metadata.storage.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { writer.raw(",") }
                writer.string(key)
                writer.raw(":")
                writer.string(value)
            }
            writer.raw("}")
        }
        writer.raw("}")
        return writer.finish()
    }
}

extension Credit {
    /// Decodes a CREDIT payload.
    public init(jsonBytes: [UInt8]) throws {
        var n: Int64?
        var scanner = JSONScanner(jsonBytes)
        do {
            try scanner.fields { scanner, key in
                if key == "n" { n = try scanner.integer() } else { try scanner.skipValue() }
            }
            try scanner.end()
        } catch let failure as JSONScanner.Failure {
            throw RPCError(code: .invalidArgument, message: "invalid Credit: \(failure)")
        }
        guard let n, (1...Int64(Int32.max)).contains(n) else {
            throw RPCError(code: .invalidArgument, message: "invalid Credit: n must be 1 to 2147483647")
        }
        self.init(n: Int(n))
    }

    /// The CREDIT payload.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter(capacity: 16)
        writer.raw(#"{"n":"#)
        writer.integer(Int64(n))
        writer.raw("}")
        return writer.finish()
    }
}
