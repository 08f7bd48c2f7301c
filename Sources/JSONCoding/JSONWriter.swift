/// Appends JSON text to a byte array: the writing half of the generated message code.
///
/// Members and elements are written followed by a comma; closing an object or array replaces a
/// trailing comma. That needs no state, and is unambiguous because only the writer emits commas
/// after values (a value never ends in a comma).
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Bytes already known to be one JSON value.
    public mutating func raw(_ json: RawJSON) { bytes.append(contentsOf: json.bytes) }

    public mutating func beginObject() { bytes.append(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { bytes.append(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    private mutating func close(_ byte: UInt8) {
        if bytes.last == UInt8(ascii: ",") { bytes[bytes.count - 1] = byte } else { bytes.append(byte) }
    }

    /// `"name":` — the member's value follows.
    public mutating func key(_ name: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        raw(name)
        // Two single bytes: an append of a buffer costs ~100 instructions however short it is.
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// Ends a member or element.
    public mutating func comma() { bytes.append(UInt8(ascii: ",")) }
    @usableFromInline mutating func colon() { bytes.append(UInt8(ascii: ":")) }

    public mutating func integer(_ value: Int64) { ASCIIDecimal.append(value, to: &bytes) }
    public mutating func int(_ value: Int) { integer(Int64(value)) }
    public mutating func int32(_ value: Int32) { integer(Int64(value)) }

    /// An int64 as a decimal string, as proto3 JSON writes it.
    public mutating func int64String(_ value: Int64) {
        bytes.append(UInt8(ascii: "\""))
        integer(value)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A number; NaN and the infinities as proto3 JSON's strings, since JSON has no literal for them.
    public mutating func double(_ value: Double) {
        if value.isNaN {
            raw(#""NaN""#)
        } else if value.isInfinite {
            if value < 0 { raw(#""-Infinity""#) } else { raw(#""Infinity""#) }
        } else {
            bytes.append(contentsOf: "\(value)".utf8)
        }
    }

    public mutating func bool(_ value: Bool) { if value { raw("true") } else { raw("false") } }

    /// Runs of bytes that need no escape are copied whole (found eight bytes at a time by the
    /// scanner's `plainRun`): a byte at a time, with a uniqueness check per append, was a third of
    /// a streaming server's CPU on 200-byte messages.
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            while start < utf8.count {
                let end = JSONScanner.plainRun(utf8, from: start).end
                if end > start { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<end])) }
                guard end < utf8.count else { break }
                escape(utf8[end])
                start = end + 1
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// A byte `plainRun` stops at: a quote, a backslash or a control character.
    private mutating func escape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): raw(#"\""#)
        case UInt8(ascii: "\\"): raw(#"\\"#)
        case 0x0A: raw(#"\n"#)
        case 0x0D: raw(#"\r"#)
        case 0x09: raw(#"\t"#)
        default:
            raw(#"\u00"#)
            bytes.append(Self.hex[Int(byte >> 4)])
            bytes.append(Self.hex[Int(byte & 0xF)])
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    @inlinable public mutating func array<T>(_ items: [T], _ element: (inout JSONWriter, T) -> Void) {
        beginArray()
        for item in items {
            element(&self, item)
            comma()
        }
        endArray()
    }

    /// A map as an object, keys sorted so the same map always encodes the same way.
    @inlinable public mutating func map<T>(_ items: [String: T], _ value: (inout JSONWriter, T) -> Void) {
        beginObject()
        for key in items.keys.sorted() {
            string(key)
            colon()
            value(&self, items[key]!)
            comma()
        }
        endObject()
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: raw("null")
        case .bool(let flag): bool(flag)
        case .integer(let number): integer(number)
        case .number(let number): double(number)
        case .string(let text): string(text)
        case .array(let items): array(items) { writer, item in writer.value(item) }
        case .object(let members): map(members) { writer, member in writer.value(member) }
        }
    }
}

/// A message that reads and writes its own JSON: what jframe-gen generates for every message,
/// so ``MessageCoding`` never goes through Codable on the hot path.
public protocol JSONMessage: Sendable {
    init(json scanner: inout JSONScanner) throws
    func writeJSON(to writer: inout JSONWriter)
    /// The message's name in errors about it: the type's, unless the type is a reader of a
    /// message the schema names otherwise.
    static var messageName: String { get }
}

extension JSONMessage {
    public static var messageName: String { "\(Self.self)" }
}

extension JSONValue: JSONMessage {
    public init(json scanner: inout JSONScanner) throws { self = try scanner.value() }
    public func writeJSON(to writer: inout JSONWriter) { writer.value(self) }
}
