/// Writes JSON text into a byte array: the writing half of the generated message code.
///
/// Members and elements are written followed by a comma; closing an object or array replaces a
/// trailing comma. That needs no state, and is unambiguous because only the writer emits commas
/// after values (a value never ends in a comma).
public struct JSONWriter {
    /// What is written, then room: the array's count is the writer's capacity, and only the first
    /// `end` bytes are written (the rest are uninitialized bytes, never read).
    ///
    /// Why not append to an array: each `append(contentsOf:)` of a short run (a member name, a
    /// number's digits, a value) cost about 100 instructions however short the run, and most of
    /// a message is short runs; here a run is a capacity check and a copy into the room.
    @usableFromInline var storage: [UInt8]
    /// Where the next byte goes: how many are written.
    @usableFromInline var end = 0
    /// Bytes written so far.
    public var count: Int { end }

    public init(capacity: Int = 256) { storage = Self.room(max(capacity, 16)) }

    /// The bytes written (a copy; `finish()` hands them over without one).
    public var bytes: [UInt8] { Array(storage[..<end]) }

    /// The bytes written, handed over without a copy; the writer is left empty.
    public mutating func finish() -> [UInt8] {
        var written = storage
        storage = []
        written.removeSubrange(end...)
        end = 0
        return written
    }

    /// An array of `capacity` bytes not yet written.
    ///
    /// Up to `blankSize` the bytes are copied from a zeroed buffer: `Array.init` from a buffer
    /// is specialized for bytes, while `[UInt8](unsafeUninitializedCapacity:)` allocates through
    /// an unspecialized generic path that looks up the array's storage type at run time (about
    /// 370 instructions more, once for every message written).
    @usableFromInline static func room(_ capacity: Int) -> [UInt8] {
        if capacity <= blankSize { return [UInt8](UnsafeRawBufferPointer(start: blank, count: capacity)) }
        return [UInt8](unsafeUninitializedCapacity: capacity) { _, initialized in initialized = capacity }
    }

    private static let blankSize = 1024
    /// `blankSize` zero bytes, never written after they are set, so shared by every thread.
    nonisolated(unsafe) private static let blank: UnsafeRawPointer = {
        let zeros = UnsafeMutableRawPointer.allocate(byteCount: blankSize, alignment: 16)
        zeros.initializeMemory(as: UInt8.self, repeating: 0, count: blankSize)
        return UnsafeRawPointer(zeros)
    }()

    /// Makes room for `more` bytes past `end`, at least doubling, keeping what is written.
    @usableFromInline mutating func grow(_ more: Int) {
        let written = end
        var bigger = Self.room(max(storage.count * 2, written + more, 16))
        storage.withUnsafeBufferPointer { old in
            bigger.withUnsafeMutableBufferPointer { new in
                guard written > 0 else { return }
                new.baseAddress!.update(from: old.baseAddress!, count: written)
            }
        }
        storage = bigger
    }

    @inlinable mutating func append(_ byte: UInt8) {
        if end == storage.count { grow(1) }
        storage[end] = byte
        end += 1
    }

    @inlinable mutating func append(_ run: UnsafeBufferPointer<UInt8>) {
        guard let source = run.baseAddress, !run.isEmpty else { return }
        if storage.count - end < run.count { grow(run.count) }
        let at = end
        storage.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: at).update(from: source, count: run.count) }
        end += run.count
    }

    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    /// Bytes already known to be one JSON value.
    public mutating func raw(_ json: RawJSON) { json.bytes.withUnsafeBufferPointer { append($0) } }

    public mutating func beginObject() { append(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { append(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    private mutating func close(_ byte: UInt8) {
        if end > 0, storage[end - 1] == UInt8(ascii: ",") { storage[end - 1] = byte } else { append(byte) }
    }

    /// `"name":` — the member's value follows.
    public mutating func key(_ name: StaticString) {
        name.withUTF8Buffer { name in
            if storage.count - end < name.count + 3 { grow(name.count + 3) }
            let at = end
            storage.withUnsafeMutableBufferPointer { room in
                let to = room.baseAddress!.advanced(by: at)
                to[0] = UInt8(ascii: "\"")
                if let from = name.baseAddress { (to + 1).update(from: from, count: name.count) }
                to[name.count + 1] = UInt8(ascii: "\"")
                to[name.count + 2] = UInt8(ascii: ":")
            }
            end += name.count + 3
        }
    }

    /// Ends a member or element.
    public mutating func comma() { append(UInt8(ascii: ",")) }
    @usableFromInline mutating func colon() { append(UInt8(ascii: ":")) }

    /// The digits written straight into the room, two at a time from the number's end.
    public mutating func integer(_ value: Int64) {
        if storage.count - end < 21 { grow(21) }
        var magnitude = value.magnitude
        var digits = 1
        var bound: UInt64 = 10
        while digits < 20, magnitude >= bound {
            digits += 1
            bound = bound &* 10
        }
        let at = end
        let sign = value < 0 ? 1 : 0
        storage.withUnsafeMutableBufferPointer { room in
            let to = room.baseAddress!.advanced(by: at)
            if sign == 1 { to[0] = UInt8(ascii: "-") }
            var index = sign + digits
            Self.digitPairs.withUTF8Buffer { pairs in
                while magnitude >= 100 {
                    let pair = Int(truncatingIfNeeded: magnitude % 100) &* 2
                    magnitude /= 100
                    index -= 2
                    to[index] = pairs[pair]
                    to[index + 1] = pairs[pair + 1]
                }
                if magnitude >= 10 {
                    let pair = Int(truncatingIfNeeded: magnitude) &* 2
                    to[index - 2] = pairs[pair]
                    to[index - 1] = pairs[pair + 1]
                } else {
                    to[index - 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude)
                }
            }
        }
        end += sign + digits
    }

    /// "00" to "99": a division by 100 makes two digits.
    private static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    public mutating func int(_ value: Int) { integer(Int64(value)) }
    public mutating func int32(_ value: Int32) { integer(Int64(value)) }

    /// An int64 as a decimal string, as proto3 JSON writes it.
    public mutating func int64String(_ value: Int64) {
        append(UInt8(ascii: "\""))
        integer(value)
        append(UInt8(ascii: "\""))
    }

    /// A number; NaN and the infinities as proto3 JSON's strings, since JSON has no literal for them.
    public mutating func double(_ value: Double) {
        if value.isNaN {
            raw(#""NaN""#)
        } else if value.isInfinite {
            if value < 0 { raw(#""-Infinity""#) } else { raw(#""Infinity""#) }
        } else {
            var text = "\(value)"
            text.withUTF8 { append($0) }
        }
    }

    public mutating func bool(_ value: Bool) { if value { raw("true") } else { raw("false") } }

    /// Runs of bytes that need no escape are copied whole (found eight bytes at a time by the
    /// scanner's `plainRun`): a byte at a time, with a uniqueness check per append, was a third of
    /// a streaming server's CPU on 200-byte messages.
    public mutating func string(_ value: String) {
        append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            while start < utf8.count {
                let runEnd = JSONScanner.plainRun(utf8, from: start).end
                if runEnd > start { append(UnsafeBufferPointer(rebasing: utf8[start..<runEnd])) }
                guard runEnd < utf8.count else { break }
                escape(utf8[runEnd])
                start = runEnd + 1
            }
        }
        append(UInt8(ascii: "\""))
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
            append(Self.hex[Int(byte >> 4)])
            append(Self.hex[Int(byte & 0xF)])
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    /// Elements are passed as the array holds them, by index: a for-in loop copies each one
    /// (a retain and a release per reference it holds).
    @inlinable public mutating func array<T>(_ items: [T], _ element: (inout JSONWriter, T) -> Void) {
        beginArray()
        for index in items.indices {
            element(&self, items[index])
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
