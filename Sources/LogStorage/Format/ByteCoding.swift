/// Big-endian integers and length-prefixed bytes appended to a byte array.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// The bytes written, moved out (the writer is left empty): an array still referenced here
    /// would be copied whole by its new owner's first change.
    mutating func take() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        return taken
    }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// `length: Int32` then the bytes; length -1 stands for nil.
    mutating func putNullable(_ value: [UInt8]?) {
        guard let value else { return put(Int32(-1)) }
        put(Int32(value.count))
        bytes.append(contentsOf: value)
    }

    /// Overwrites a value written earlier, at a byte position.
    mutating func set<T: FixedWidthInteger>(_ value: T, at position: Int) {
        withUnsafeBytes(of: value.bigEndian) { raw in
            for (i, byte) in raw.enumerated() { bytes[position + i] = byte }
        }
    }
}

/// Reads what `ByteWriter` writes, bounds-checked: garbage throws, it never traps.
struct ByteReader {
    struct Truncated: Error {}

    let bytes: ArraySlice<UInt8>
    private(set) var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - index }

    mutating func get<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw Truncated() }
        var value: T = 0
        for i in 0..<size { value = value << 8 | T(truncatingIfNeeded: bytes[index + i]) }
        index += size
        return value
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw Truncated() }
        defer { index += count }
        return bytes[index..<index + count]
    }

    mutating func getNullable() throws -> [UInt8]? {
        let length: Int32 = try get()
        if length == -1 { return nil }
        return Array(try take(Int(length)))
    }
}
