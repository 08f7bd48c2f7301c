/// Why bytes from a Kafka client could not be read. Never a crash: every length a client sends is
/// checked against the bytes actually there before anything is allocated for it.
public enum KafkaDecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended before a field did.
    case truncated(needed: Int, remaining: Int)
    /// A value no valid encoding has (a negative length, a varint over its width, bad UTF-8).
    case invalid(String)

    public var description: String {
        switch self {
        case .truncated(let needed, let remaining): return "truncated: \(needed) bytes needed, \(remaining) left"
        case .invalid(let what): return what
        }
    }
}

/// A Kafka UUID (topic ids): 16 bytes, written as two big-endian 64-bit halves.
public struct KafkaUUID: Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64
    public static let zero = KafkaUUID(high: 0, low: 0)

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }
}

/// What every generated request and response is: read and written per version.
public protocol KafkaMessage: Sendable {
    static var apiKey: Int16 { get }
    /// The versions this listener parses.
    static var versions: ClosedRange<Int16> { get }
    /// From which version on the message is compact and carries tagged fields (KIP-482).
    static func isFlexible(_ version: Int16) -> Bool
    init(from reader: inout KafkaReader, version: Int16) throws(KafkaDecodeError)
    func encode(into writer: inout KafkaWriter, version: Int16)
}

extension KafkaMessage {
    /// Reads a whole message body; bytes left over are an error (a client and we disagree on the version's layout).
    public init(bytes: ArraySlice<UInt8>, version: Int16) throws(KafkaDecodeError) {
        var reader = KafkaReader(bytes)
        try self.init(from: &reader, version: version)
        guard reader.remaining == 0 else {
            throw .invalid("\(reader.remaining) bytes after the end of a v\(version) \(Self.self)")
        }
    }

    public func encoded(version: Int16) -> [UInt8] {
        var writer = KafkaWriter()
        encode(into: &writer, version: version)
        return writer.bytes
    }
}

/// Reads Kafka's primitive types (big-endian integers, int16/int32- or varint-prefixed strings,
/// bytes and arrays, tagged fields) from bytes a client sent.
public struct KafkaReader {
    /// Arrays longer than this are refused whatever bytes follow (Kafka 4.4's cap).
    public static let maxArrayCount = 1_000_000

    private let bytes: ArraySlice<UInt8>
    public private(set) var position: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    public var remaining: Int { bytes.endIndex - position }

    /// Steps over `count` bytes, checked to be there, and returns where they start.
    private mutating func advance(_ count: Int) throws(KafkaDecodeError) -> Int {
        guard count >= 0 else { throw .invalid("negative length \(count)") }
        guard count <= remaining else { throw .truncated(needed: count, remaining: remaining) }
        defer { position += count }
        return position
    }

    private mutating func take(_ count: Int) throws(KafkaDecodeError) -> ArraySlice<UInt8> {
        let start = try advance(count)
        return bytes[start..<start + count]
    }

    public mutating func skip(_ count: Int) throws(KafkaDecodeError) { _ = try take(count) }

    public mutating func readBytes(count: Int) throws(KafkaDecodeError) -> [UInt8] { Array(try take(count)) }

    public mutating func readSlice(count: Int) throws(KafkaDecodeError) -> ArraySlice<UInt8> { try take(count) }

    /// Integers are read byte by byte from the input, not through a slice of it: a slice per
    /// field (every varint byte of a record batch) retained and released the input each time.
    private mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) throws(KafkaDecodeError) -> T {
        let start = try advance(MemoryLayout<T>.size)
        var value: T = 0
        for index in start..<start + MemoryLayout<T>.size { value = value << 8 | T(bytes[index]) }
        return value
    }

    public mutating func readInt8() throws(KafkaDecodeError) -> Int8 { Int8(bitPattern: try readUInt8()) }
    public mutating func readUInt8() throws(KafkaDecodeError) -> UInt8 { bytes[try advance(1)] }
    public mutating func readInt16() throws(KafkaDecodeError) -> Int16 { try readBigEndian(Int16.self) }
    public mutating func readUInt16() throws(KafkaDecodeError) -> UInt16 { try readBigEndian(UInt16.self) }
    public mutating func readInt32() throws(KafkaDecodeError) -> Int32 { try readBigEndian(Int32.self) }
    public mutating func readUInt32() throws(KafkaDecodeError) -> UInt32 { try readBigEndian(UInt32.self) }
    public mutating func readInt64() throws(KafkaDecodeError) -> Int64 { try readBigEndian(Int64.self) }
    public mutating func readFloat64() throws(KafkaDecodeError) -> Double { Double(bitPattern: try readBigEndian(UInt64.self)) }
    public mutating func readBool() throws(KafkaDecodeError) -> Bool { try readUInt8() != 0 }
    public mutating func readUUID() throws(KafkaDecodeError) -> KafkaUUID {
        KafkaUUID(high: try readBigEndian(UInt64.self), low: try readBigEndian(UInt64.self))
    }

    /// An unsigned LEB128 varint of at most 5 bytes (compact lengths, tag numbers).
    public mutating func readUnsignedVarint() throws(KafkaDecodeError) -> UInt32 {
        var value: UInt32 = 0
        for shift in stride(from: 0, to: 35, by: 7) {
            let byte = try readUInt8()
            if shift == 28 && byte > 0x0F { throw .invalid("an unsigned varint over 32 bits") }
            value |= UInt32(byte & 0x7F) << UInt32(shift)
            if byte & 0x80 == 0 { return value }
        }
        throw .invalid("an unsigned varint over 5 bytes")
    }

    /// A zigzag varint (record fields).
    public mutating func readVarint() throws(KafkaDecodeError) -> Int32 {
        let raw = try readUnsignedVarint()
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A zigzag varlong of at most 10 bytes (record timestamps).
    public mutating func readVarlong() throws(KafkaDecodeError) -> Int64 {
        var raw: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            let byte = try readUInt8()
            if shift == 63 && byte > 1 { throw .invalid("a varlong over 64 bits") }
            raw |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte & 0x80 == 0 { return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1))) }
        }
        throw .invalid("a varlong over 10 bytes")
    }

    /// A length: int16 (strings) or int32 (bytes, arrays) before flexible versions, unsigned
    /// varint N+1 after; nil is null.
    @usableFromInline
    mutating func readLength(compact: Bool, wide: Bool) throws(KafkaDecodeError) -> Int? {
        if compact {
            let raw = try readUnsignedVarint()
            return raw == 0 ? nil : Int(raw - 1)
        }
        let length = wide ? Int(try readInt32()) : Int(try readInt16())
        if length == -1 { return nil }
        guard length >= 0 else { throw .invalid("length \(length)") }
        return length
    }

    public mutating func readNullableString(compact: Bool, nullable: Bool = true) throws(KafkaDecodeError) -> String? {
        guard let length = try readLength(compact: compact, wide: false) else {
            if nullable { return nil }
            throw .invalid("null where a string is required")
        }
        let string = try take(length).withUnsafeBufferPointer { utf8 in
            // ASCII (the names and ids clients send, in practice) is valid UTF-8 as it stands:
            // the standard library's generic validation, not specialized here, is left for the rest.
            utf8.allSatisfy { $0 < 0x80 } ? String(decoding: utf8, as: UTF8.self) : String(validating: utf8, as: UTF8.self)
        }
        guard let string else { throw .invalid("a string that is not UTF-8") }
        return string
    }

    public mutating func readString(compact: Bool) throws(KafkaDecodeError) -> String {
        try readNullableString(compact: compact, nullable: false)!
    }

    public mutating func readNullableBytes(compact: Bool, nullable: Bool = true) throws(KafkaDecodeError) -> [UInt8]? {
        guard let length = try readLength(compact: compact, wide: true) else {
            if nullable { return nil }
            throw .invalid("null where bytes are required")
        }
        return Array(try take(length))
    }

    public mutating func readBytes(compact: Bool) throws(KafkaDecodeError) -> [UInt8] {
        try readNullableBytes(compact: compact, nullable: false)!
    }

    /// Inlinable, so that each message's reader is specialized for its element type (across
    /// modules a generic function runs unspecialized, looking up `[Element]`'s metadata per call).
    @inlinable
    public mutating func readNullableArray<Element>(
        compact: Bool, nullable: Bool = true, _ element: (inout KafkaReader) throws(KafkaDecodeError) -> Element
    ) throws(KafkaDecodeError) -> [Element]? {
        guard let count = try readLength(compact: compact, wide: true) else {
            if nullable { return nil }
            throw .invalid("null where an array is required")
        }
        // Every element takes at least one byte: a count past what is left is a lie, refused
        // before any memory is reserved for it.
        guard count <= Self.maxArrayCount else { throw .invalid("an array of \(count) elements (at most \(Self.maxArrayCount))") }
        guard count <= remaining else { throw .truncated(needed: count, remaining: remaining) }
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try element(&self)) }
        return elements
    }

    @inlinable
    public mutating func readArray<Element>(
        compact: Bool, _ element: (inout KafkaReader) throws(KafkaDecodeError) -> Element
    ) throws(KafkaDecodeError) -> [Element] {
        try readNullableArray(compact: compact, nullable: false, element)!
    }

    /// Skips a tagged-field section: nothing this listener serves reads one.
    public mutating func skipTaggedFields() throws(KafkaDecodeError) {
        let count = try readUnsignedVarint()
        guard count <= remaining else { throw .truncated(needed: Int(count), remaining: remaining) }
        for _ in 0..<count {
            _ = try readUnsignedVarint()
            try skip(Int(try readUnsignedVarint()))
        }
    }
}

/// Writes Kafka's primitive types, the mirror of ``KafkaReader``.
public struct KafkaWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    private mutating func writeBigEndian<T: FixedWidthInteger>(_ value: T) {
        var big = value.bigEndian
        withUnsafeBytes(of: &big) { bytes.append(contentsOf: $0) }
    }

    public mutating func writeInt8(_ value: Int8) { bytes.append(UInt8(bitPattern: value)) }
    public mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }
    public mutating func writeInt16(_ value: Int16) { writeBigEndian(value) }
    public mutating func writeUInt16(_ value: UInt16) { writeBigEndian(value) }
    public mutating func writeInt32(_ value: Int32) { writeBigEndian(value) }
    public mutating func writeUInt32(_ value: UInt32) { writeBigEndian(value) }
    public mutating func writeInt64(_ value: Int64) { writeBigEndian(value) }
    public mutating func writeFloat64(_ value: Double) { writeBigEndian(value.bitPattern) }
    public mutating func writeBool(_ value: Bool) { bytes.append(value ? 1 : 0) }
    public mutating func writeUUID(_ value: KafkaUUID) {
        writeBigEndian(value.high)
        writeBigEndian(value.low)
    }
    public mutating func writeRaw(_ raw: some Sequence<UInt8>) { bytes.append(contentsOf: raw) }

    public mutating func writeUnsignedVarint(_ value: UInt32) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    public mutating func writeVarint(_ value: Int32) {
        writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    public mutating func writeVarlong(_ value: Int64) {
        var raw = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        while raw >= 0x80 {
            bytes.append(UInt8(raw & 0x7F) | 0x80)
            raw >>= 7
        }
        bytes.append(UInt8(raw))
    }

    private mutating func writeLength(_ length: Int?, compact: Bool, wide: Bool) {
        if compact {
            writeUnsignedVarint(length.map { UInt32($0 + 1) } ?? 0)
        } else if wide {
            writeInt32(length.map { Int32($0) } ?? -1)
        } else {
            writeInt16(length.map { Int16($0) } ?? -1)
        }
    }

    public mutating func writeNullableString(_ value: String?, compact: Bool) {
        writeLength(value.map { $0.utf8.count }, compact: compact, wide: false)
        if let value { bytes.append(contentsOf: value.utf8) }
    }

    public mutating func writeString(_ value: String, compact: Bool) { writeNullableString(value, compact: compact) }

    public mutating func writeNullableBytes(_ value: [UInt8]?, compact: Bool) {
        writeLength(value?.count, compact: compact, wide: true)
        if let value { bytes.append(contentsOf: value) }
    }

    public mutating func writeBytes(_ value: [UInt8], compact: Bool) { writeNullableBytes(value, compact: compact) }

    public mutating func writeNullableArray<Element>(
        _ elements: [Element]?, compact: Bool, _ element: (inout KafkaWriter, Element) -> Void
    ) {
        writeLength(elements?.count, compact: compact, wide: true)
        for value in elements ?? [] { element(&self, value) }
    }

    public mutating func writeArray<Element>(_ elements: [Element], compact: Bool, _ element: (inout KafkaWriter, Element) -> Void) {
        writeNullableArray(elements, compact: compact, element)
    }

    public mutating func writeEmptyTaggedFields() { bytes.append(0) }
}
