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
        if let message = message as? any JSONMessage {
            var writer = JSONWriter()
            message.writeJSON(to: &writer)
            return writer.bytes
        }
        do {
            return Array(try JSONEncoder().encode(message))
        } catch {
            throw RPCError(code: .internalError, message: "could not encode \(Message.self) as JSON: \(error)")
        }
    }

    /// Decodes `Message` from JSON bytes; a failure is `INVALID_ARGUMENT` naming what was wrong.
    public static func decode<Message: Decodable>(_ type: Message.Type, from bytes: [UInt8]) throws -> Message {
        if let generated = Message.self as? any JSONMessage.Type {
            do {
                var scanner = JSONScanner(bytes)
                let message = try generated.init(json: &scanner)
                try scanner.end()
                return message as! Message
            } catch let failure as JSONScanner.Failure {
                // The member's path, so a client can point at what it sent wrong (FieldViolations).
                throw RPCError.invalidArgument(
                    "invalid \(Message.self): \(failure)",
                    violations: [FieldViolation(field: failure.path.joined(separator: "."), description: failure.reason)])
            }
        }
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
