/// Writes big-endian integers and byte strings into an array whose size is known ahead: a
/// batch's records and an index entry have sizes computed before a byte is written.
///
/// Why not appends to a growing array: each append checks capacity and uniqueness and copies
/// through a generic path, about 100 instructions for a 4-byte field; a batch-1 produce wrote 15
/// fields a record that way (1,700 of its instructions, callgrind). Here a field is a bounds
/// check and a store. Every write is bounds-checked (a wrong size traps; it never writes past the
/// array), and `bytes(count:)` traps unless exactly `count` bytes were written.
struct ByteWriter: ~Copyable {
    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes written so far.
    private(set) var position = 0

    private init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    /// An array of exactly `count` bytes, written by `write`.
    static func bytes(count: Int, _ write: (inout ByteWriter) -> Void) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var writer = ByteWriter(UnsafeMutableRawBufferPointer(start: buffer.baseAddress, count: count))
            write(&writer)
            precondition(writer.position == count, "wrote \(writer.position) bytes of the \(count) announced")
            initialized = count
        }
    }

    /// Room for `count` more bytes, or a trap.
    private func reserve(_ count: Int) {
        precondition(count <= buffer.count - position, "a write past the \(buffer.count) bytes announced")
    }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        buffer.storeBytes(of: value.bigEndian, toByteOffset: position, as: T.self)
        position += MemoryLayout<T>.size
    }

    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let source = bytes.baseAddress { (buffer.baseAddress! + position).copyMemory(from: source, byteCount: bytes.count) }
        position += bytes.count
    }

    /// `length: Int32` then the bytes; length -1 stands for nil.
    mutating func putNullable(_ value: [UInt8]?) {
        guard let value else { return put(Int32(-1)) }
        put(Int32(value.count))
        value.withUnsafeBytes { put($0) }
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
