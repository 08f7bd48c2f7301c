import NIOCore
import PostgresNIO

/// A one-dimensional array bound as a statement parameter, written in PostgreSQL's binary array
/// format by concrete code.
///
/// Why not postgres-nio's `Array: PostgresEncodable`: it encodes each element through generic
/// code the compiler cannot specialize across the module boundary, so every element looks up
/// type metadata at run time. A lone command's batch binds twenty one-element arrays, and that
/// encoding was about 80,000 instructions of the 690,000 a command cost the command-service
/// (callgrind); written here it is a few hundred.
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
    /// lower bound (1), then each element as a 32-bit length and its binary value.
    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(count == 0 ? 0 : 1, as: Int32.self)
        buffer.writeInteger(0, as: Int32.self)
        buffer.writeInteger(elementType.rawValue, as: UInt32.self)
        guard count > 0 else { return }
        buffer.writeInteger(Int32(count), as: Int32.self)
        buffer.writeInteger(1, as: Int32.self)
        switch elements {
        case .bigint(let values):
            for value in values {
                buffer.writeInteger(8, as: Int32.self)
                buffer.writeInteger(value, as: Int64.self)
            }
        case .text(let values):
            for value in values {
                buffer.writeInteger(Int32(value.utf8.count), as: Int32.self)
                buffer.writeString(value)
            }
        case .boolean(let values):
            for value in values {
                buffer.writeInteger(1, as: Int32.self)
                buffer.writeInteger(value ? 1 : 0, as: UInt8.self)
            }
        case .bytea(let values):
            for value in values {
                buffer.writeInteger(Int32(value.count), as: Int32.self)
                buffer.writeBytes(value)
            }
        }
    }
}
