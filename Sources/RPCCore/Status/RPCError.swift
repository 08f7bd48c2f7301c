/// An error that ends a call with a status: what handlers throw and what clients catch.
///
/// Any other error a handler throws reaches the client as `UNKNOWN` with a generic message, so
/// internal details never leak; throw `RPCError` to choose the code and the words the caller sees.
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    /// Structured details, for example the field violations of an `INVALID_ARGUMENT`.
    public var details: [ErrorDetail]
    /// Trailing metadata sent with the status.
    public var metadata: Metadata

    public init(
        code: StatusCode, message: String, details: [ErrorDetail] = [], metadata: Metadata = [:]
    ) {
        self.code = code
        self.message = message
        self.details = details
        self.metadata = metadata
    }

    public var description: String {
        var text = "\(code.name): \(message)"
        for detail in details {
            text += " [\(detail)]"
        }
        return text
    }
}

extension RPCError {
    /// `INVALID_ARGUMENT` listing the fields that broke their rules.
    public static func invalidArgument(_ message: String, violations: [FieldViolation]) -> RPCError {
        RPCError(code: .invalidArgument, message: message, details: [.fieldViolations(violations)])
    }
}
