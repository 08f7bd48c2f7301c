/// A JSON value kept as the exact bytes it arrived in, checked once to be well-formed.
///
/// For payloads a server stores and forwards without needing their structure: the broker's record
/// values go from a producer's request to the log to a consumer's reply without being parsed into
/// a tree and printed again. Schemas mark such fields with `"x-jframe-raw": true`.
public struct RawJSON: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Checks that `bytes` hold exactly one JSON value (surrounding whitespace allowed).
    public init(validating bytes: [UInt8]) throws {
        var scanner = JSONScanner(bytes)
        self = try scanner.rawValue()
        try scanner.end()
    }

    public init(validating text: String) throws { try self.init(validating: Array(text.utf8)) }

    /// Whether `bytes` are what `init(validating:)` accepts (one JSON value, valid UTF-8),
    /// without keeping a copy: for a caller that only asks (the broker labelling a record it
    /// stores as it came).
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        var scanner = JSONScanner(bytes)
        do {
            try scanner.skipValue()
            try scanner.end()
        } catch {
            return false
        }
        return JSONScanner.isASCII(bytes[...]) || String(validating: bytes, as: UTF8.self) != nil
    }

    /// Bytes checked before, for example when they were stored: not checked again.
    public init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

extension RawJSON: JSONMessage {
    public init(json scanner: inout JSONScanner) throws { self = try scanner.rawValue() }
    public func writeJSON(to writer: inout JSONWriter) { writer.raw(self) }
}

extension RawJSON: Codable {
    /// Through Codable (the slow path) the value is parsed and printed compactly.
    public init(from decoder: any Decoder) throws {
        var writer = JSONWriter()
        writer.value(try JSONValue(from: decoder))
        bytes = writer.bytes
    }

    public func encode(to encoder: any Encoder) throws {
        var scanner = JSONScanner(bytes)
        try scanner.value().encode(to: encoder)
    }
}
