import NIOCore
import PostgresNIO

/// A one-dimensional array bound as a statement parameter, written in PostgreSQL's binary array
/// format by concrete code.
///
/// Why not postgres-nio's `Array: PostgresEncodable`: it encodes each element through generic
/// code the compiler cannot specialize across the module boundary, and every integer it writes
/// is a `ByteBuffer` write of its own (with its capacity and exclusivity checks). A lone
/// command's batch binds twenty one-element arrays; written here in one reservation each, the
/// command-service's work per command went from 458,000 to 432,000 instructions (callgrind).
struct PostgresArrayBind: PostgresDynamicTypeEncodable, Sendable {
    enum Elements: Sendable {
        case bigint([Int64])
        case text([String])
        case boolean([Bool])
        case bytea([[UInt8]])
    }

    let elements: Elements

    init(_ values: [Int64]) { elements = .bigint(values) }
    init(_ values: [String]) { elements = .text(values) }
    init(_ values: [Bool]) { elements = .boolean(values) }
    init(bytea values: [[UInt8]]) { elements = .bytea(values) }

    /// Text arrays as a statement's parameters, in order.
    static func bindings(_ arrays: [String]...) -> PostgresBindings {
        var binds = PostgresBindings(capacity: arrays.count)
        for array in arrays { binds.append(PostgresArrayBind(array)) }
        return binds
    }

    var psqlType: PostgresDataType {
        switch elements {
        case .bigint: .int8Array
        case .text: .textArray
        case .boolean: .boolArray
        case .bytea: .byteaArray
        }
    }

    var psqlFormat: PostgresFormat { .binary }

    private var elementType: PostgresDataType {
        switch elements {
        case .bigint: .int8
        case .text: .text
        case .boolean: .bool
        case .bytea: .bytea
        }
    }

    private var count: Int {
        switch elements {
        case .bigint(let values): values.count
        case .text(let values): values.count
        case .boolean(let values): values.count
        case .bytea(let values): values.count
        }
    }

    /// The layout of `array_send`: dimensions (0 for an empty array), a has-nulls flag (never:
    /// these arrays hold no NULLs), the element type's OID, then per dimension its length and
    /// lower bound (1), then each element as a 32-bit length and its binary value. Written in one
    /// reservation of the exact size: a `ByteBuffer` write per integer (five per element) cost
    /// more than the rest of the encoding.
    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        let size = encodedSize
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = BigEndianWriter(raw)
            out.int32(count == 0 ? 0 : 1)
            out.int32(0)
            out.int32(Int32(bitPattern: elementType.rawValue))
            guard count > 0 else { return out.offset }
            out.int32(Int32(count))
            out.int32(1)
            switch elements {
            case .bigint(let values):
                for value in values {
                    out.int32(8)
                    out.int64(value)
                }
            case .text(let values):
                for value in values {
                    out.int32(Int32(value.utf8.count))
                    var text = value
                    text.withUTF8 { out.bytes(UnsafeRawBufferPointer($0)) }
                }
            case .boolean(let values):
                for value in values {
                    out.int32(1)
                    out.byte(value ? 1 : 0)
                }
            case .bytea(let values):
                for value in values {
                    out.int32(Int32(value.count))
                    value.withUnsafeBytes { out.bytes($0) }
                }
            }
            return out.offset
        }
    }

    private var encodedSize: Int {
        let header = count == 0 ? 12 : 20
        switch elements {
        case .bigint(let values): return header + 12 * values.count
        case .text(let values): return values.reduce(header) { $0 + 4 + $1.utf8.count }
        case .boolean(let values): return header + 5 * values.count
        case .bytea(let values): return values.reduce(header) { $0 + 4 + $1.count }
        }
    }
}

/// Big-endian integers and bytes into memory sized for them beforehand.
private struct BigEndianWriter {
    let raw: UnsafeMutableRawBufferPointer
    var offset = 0

    init(_ raw: UnsafeMutableRawBufferPointer) { self.raw = raw }

    mutating func int32(_ value: Int32) {
        raw.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Int32.self)
        offset += 4
    }

    mutating func int64(_ value: Int64) {
        raw.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Int64.self)
        offset += 8
    }

    mutating func byte(_ value: UInt8) {
        raw[offset] = value
        offset += 1
    }

    mutating func bytes(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, let target = raw.baseAddress else { return }
        (target + offset).copyMemory(from: source, byteCount: bytes.count)
        offset += bytes.count
    }
}
