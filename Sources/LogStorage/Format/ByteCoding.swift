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
    ///
    /// Up to `stagedSize` bytes are written on the stack and copied by `Array.init` from the
    /// buffer, which the compiler specializes for bytes: `[UInt8](unsafeUninitializedCapacity:)`
    /// allocates through the standard library's unspecialized generic path, which looks up the
    /// array's storage type at run time (about 650 instructions against 290 for a 200-byte array,
    /// once per produce for its batch).
    static func bytes(count: Int, _ write: (inout ByteWriter) -> Void) -> [UInt8] {
        func fill(_ buffer: UnsafeMutableRawBufferPointer) {
            var writer = ByteWriter(buffer)
            write(&writer)
            precondition(writer.position == count, "wrote \(writer.position) bytes of the \(count) announced")
        }
        if count <= stagedSize {
            return withUnsafeTemporaryAllocation(byteCount: count, alignment: 8) { buffer in
                fill(buffer)
                return [UInt8](UnsafeRawBufferPointer(buffer))
            }
        }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    private static let stagedSize = 1024

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
///
/// It reads bytes borrowed for the length of one `reading` call, through a pointer: read from an
/// `ArraySlice`, each byte is a bounds-checked subscript and each field sliced off retains the
/// array: about 2,000 instructions to decode one 200-byte record against about 1,000 this way,
/// its value's copy included (callgrind, a fetch of 1,000). It must not outlive its `reading` call.
struct ByteReader {
    struct Truncated: Error {}

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Runs `read` over `bytes`, which stay borrowed until it returns.
    static func reading<R>(_ bytes: ArraySlice<UInt8>, _ read: (inout ByteReader) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            return try read(&reader)
        }
    }

    var remaining: Int { bytes.count - index }

    mutating func get<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw Truncated() }
        let value = bytes.loadUnaligned(fromByteOffset: index, as: T.self)
        index += size
        return T(bigEndian: value)
    }

    /// The next `count` bytes, still borrowed.
    mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw Truncated() }
        defer { index += count }
        return UnsafeRawBufferPointer(rebasing: bytes[index..<index + count])
    }

    /// A reader of the next `count` bytes.
    mutating func reader(_ count: Int) throws -> ByteReader { ByteReader(try take(count)) }

    /// `length: Int32` then the bytes, copied out; length -1 stands for nil.
    ///
    /// Copied by `Array.init` from the buffer, which the compiler specializes for bytes:
    /// `[UInt8](unsafeUninitializedCapacity:)` allocates through an unspecialized generic path
    /// that looks up the array's storage type at run time (about 650 instructions against 290
    /// for a 200-byte copy, allocation included).
    mutating func getNullable() throws -> [UInt8]? {
        let length: Int32 = try get()
        if length == -1 { return nil }
        return [UInt8](try take(Int(length)))
    }
}
