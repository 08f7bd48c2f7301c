#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns messages into JSON bytes and back: the one place the RPC layer touches a JSON coder.
///
/// Each message is decoded once, straight into its type, from the payload of its MESSAGE frame;
/// the envelope travels in separate frames so no JSON is parsed twice.
public enum MessageCoding {
    /// Encodes `message` as compact JSON. Key order is not sorted: the protocol does not need it.
    public static func encode<Message: Encodable>(_ message: Message) throws -> [UInt8] {
        if let message = message as? any JSONMessage { return encodeGenerated(message) }
        return try encodeWithFoundation(message)
    }

    /// Decodes `Message` from JSON bytes; a failure is `INVALID_ARGUMENT` naming what was wrong.
    public static func decode<Message: Decodable>(_ type: Message.Type, from bytes: [UInt8]) throws -> Message {
        if let generated = Message.self as? any JSONMessage.Type { return try decodeGenerated(generated, from: bytes) as! Message }
        return try decodeWithFoundation(Message.self, from: bytes)
    }

    /// `encode(_:)` for one type.
    public typealias Encoder<Message> = @Sendable (Message) throws -> [UInt8]
    /// `decode(_:from:)` for one type.
    public typealias Decoder<Message> = @Sendable ([UInt8]) throws -> Message

    /// `encode(_:)` for `type`, with the way to write it chosen now rather than per message.
    ///
    /// Why: `encode` and `decode` find out whether a type is generated (`JSONMessage`), and a
    /// request whether it has a schema to check (`SchemaValidated`), with dynamic casts of 300 to
    /// 900 instructions each; asked once per method (the router) or per stream, instead of once
    /// per message, that is about 2,000 fewer instructions per unary call on the server.
    public static func encoder<Message: Encodable & Sendable>(for type: Message.Type) -> Encoder<Message> {
        if let generated = type as? any JSONMessage.Type, let encode = generatedEncoder(generated) as? Encoder<Message> {
            return encode
        }
        return { try encodeWithFoundation($0) }
    }

    /// `decode(_:from:)` for `type`, chosen now (see `encoder(for:)`). `checkingSchema`: a
    /// message that breaks its schema is `INVALID_ARGUMENT` listing each violation, as every
    /// request a server reads is.
    public static func decoder<Message: Decodable & Sendable>(for type: Message.Type, checkingSchema: Bool) -> Decoder<Message> {
        let decode: Decoder<Message>
        if let generated = type as? any JSONMessage.Type, let generatedDecode = generatedDecoder(generated) as? Decoder<Message> {
            decode = generatedDecode
        } else {
            decode = { try decodeWithFoundation(Message.self, from: $0) }
        }
        guard checkingSchema, let validated = type as? any (SchemaValidated & Sendable).Type,
            let check = schemaCheck(validated) as? @Sendable (Message) throws -> Void
        else { return decode }
        return { bytes in
            let message = try decode(bytes)
            try check(message)
            return message
        }
    }

    // The three below are opened on the concrete type and handed back as `Any`, because a
    // function of the opened type cannot be returned as one of `Message` without a cast; the
    // cast back is made once, where they are called.

    private static func generatedEncoder<Message: JSONMessage>(_: Message.Type) -> Any {
        let encode: Encoder<Message> = { encodeGenerated($0) }
        return encode
    }

    private static func generatedDecoder<Message: JSONMessage>(_: Message.Type) -> Any {
        let decode: Decoder<Message> = { try decodeGenerated(Message.self, from: $0) }
        return decode
    }

    private static func schemaCheck<Message: SchemaValidated & Sendable>(_: Message.Type) -> Any {
        let name = "\(Message.self)"
        let check: @Sendable (Message) throws -> Void = { try $0.checkSchema(name) }
        return check
    }

    static func encodeGenerated<Message: JSONMessage>(_ message: Message) -> [UInt8] {
        var writer = JSONWriter()
        message.writeJSON(to: &writer)
        return writer.finish()
    }

    private static func encodeWithFoundation<Message: Encodable>(_ message: Message) throws -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(message))
        } catch {
            throw RPCError(code: .internalError, message: "could not encode \(Message.self) as JSON: \(error)")
        }
    }

    static func decodeGenerated<Message: JSONMessage>(_ type: Message.Type, from bytes: [UInt8]) throws -> Message {
        do {
            var scanner = JSONScanner(bytes)
            let message = try Message(json: &scanner)
            try scanner.end()
            return message
        } catch let failure as JSONScanner.Failure {
            // The member's path, so a client can point at what it sent wrong (FieldViolations).
            throw RPCError.invalidArgument(
                "invalid \(Message.messageName): \(failure)",
                violations: [FieldViolation(field: failure.path.joined(separator: "."), description: failure.reason)])
        }
    }

    private static func decodeWithFoundation<Message: Decodable>(_ type: Message.Type, from bytes: [UInt8]) throws -> Message {
        do {
            return try JSONDecoder().decode(Message.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw RPCError(code: .invalidArgument, message: "invalid \(Message.self): \(describe(error))")
        } catch {
            throw RPCError(code: .invalidArgument, message: "invalid \(Message.self): \(error)")
        }
    }

    /// A one-line account of a decoding error: where in the document, and what was expected.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the message" : "field '" + keys.joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing required field '\(key.stringValue)'" + (context.codingPath.isEmpty ? "" : " in \(parent)")
        case .typeMismatch(let type, let context):
            return "\(path(context)) should be \(jsonTypeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context)) should be \(jsonTypeName(type)), not null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON" }
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt32.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}
