/// Hand-written JSON for the envelopes on every call's path (HEADERS, CREDIT).
///
/// Why: Foundation's JSONDecoder spent more time on a 60-byte HEADERS payload than on the
/// 200-byte request it announces (a fifth of a server's CPU at 64 calls in flight). These
/// envelopes have three members of known types, so a direct scanner is exact and cheap. It is
/// strict: malformed JSON, a member of the wrong type or trailing data is an error; unknown
/// members are skipped, as the protocol requires. Other envelopes use Codable.
struct JSONScanner {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    private func fail(_ message: String) -> Failure { Failure(description: "\(message) at byte \(index)") }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    private mutating func peek() -> UInt8? {
        skipSpace()
        return index < bytes.count ? bytes[index] : nil
    }

    /// Calls `member` with each member name; it must consume the value.
    mutating func object(_ member: (inout JSONScanner, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            let name = try string()
            try expect(UInt8(ascii: ":"))
            try member(&self, name)
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return
            default: throw fail("expected ',' or '}'")
            }
        }
    }

    /// The whole input must have been consumed.
    mutating func end() throws {
        skipSpace()
        guard index == bytes.count else { throw fail("unexpected data after the JSON value") }
    }

    mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                defer { index += 1 }
                return String(decoding: bytes[start..<index], as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") { return try escapedString(from: start) }
            guard byte >= 0x20 else { throw fail("control character in a string") }
            index += 1
        }
        throw fail("unterminated string")
    }

    private mutating func escapedString(from start: Int) throws -> String {
        var utf8 = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw fail("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw fail("unpaired surrogate") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let value = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                    utf8.append(contentsOf: String(Character(value)).utf8)
                default: throw fail("invalid escape")
                }
            default:
                guard byte >= 0x20 else { throw fail("control character in a string") }
                utf8.append(byte)
            }
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("short \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }

    /// An integer written without fraction or exponent.
    mutating func integer() throws -> Int64 {
        skipSpace()
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        let start = index
        var value: Int64 = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int64(bytes[index] - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw fail("integer out of range") }
            value = sum
            index += 1
        }
        guard index > start else { throw fail("expected an integer") }
        if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
            throw fail("expected an integer, not a fraction")
        }
        return negative ? -value : value
    }

    /// Skips any JSON value (for members this version does not know).
    mutating func skipValue() throws {
        switch peek() {
        case UInt8(ascii: "{"): try object { scanner, _ in try scanner.skipValue() }
        case UInt8(ascii: "["):
            index += 1
            if peek() == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                try skipValue()
                switch peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return
                default: throw fail("expected ',' or ']'")
                }
            }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case .some:
            let start = index
            while index < bytes.count, "+-.eE0123456789".utf8.contains(bytes[index]) { index += 1 }
            guard index > start else { throw fail("unexpected character") }
        case nil: throw fail("unexpected end")
        }
    }

    private mutating func literal(_ text: String) throws {
        for byte in text.utf8 {
            guard index < bytes.count, bytes[index] == byte else { throw fail("invalid literal") }
            index += 1
        }
    }
}

/// Appends JSON text to a byte array.
struct JSONWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func integer(_ value: Int64) { bytes.append(contentsOf: String(value).utf8) }

    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw(#"\""#)
            case UInt8(ascii: "\\"): raw(#"\\"#)
            case 0x0A: raw(#"\n"#)
            case 0x0D: raw(#"\r"#)
            case 0x09: raw(#"\t"#)
            case 0..<0x20:
                raw(#"\u00"#)
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension CallHeaders {
    /// Decodes a HEADERS payload. Throws `INVALID_ARGUMENT` naming what is wrong.
    public init(jsonBytes: [UInt8]) throws {
        var method: String?
        var timeoutMs: Int64?
        var metadata: Metadata?
        var scanner = JSONScanner(jsonBytes)
        do {
            try scanner.object { scanner, name in
                switch name {
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
        return writer.bytes
    }
}

extension Credit {
    /// Decodes a CREDIT payload.
    public init(jsonBytes: [UInt8]) throws {
        var n: Int64?
        var scanner = JSONScanner(jsonBytes)
        do {
            try scanner.object { scanner, name in
                if name == "n" { n = try scanner.integer() } else { try scanner.skipValue() }
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
        return writer.bytes
    }
}
