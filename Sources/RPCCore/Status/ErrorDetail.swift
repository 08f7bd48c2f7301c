/// One structured detail of an error status: a type name and a JSON value whose shape that type
/// defines (the JSON counterpart of `google.rpc.Status.details`).
public struct ErrorDetail: Codable, Hashable, Sendable, CustomStringConvertible {
    /// A message type name, for example `jframe.rpc.v1.FieldViolations`.
    public var type: String
    public var value: JSONValue

    public init(type: String, value: JSONValue) {
        self.type = type
        self.value = value
    }

    public var description: String { "\(type) \(value)" }

    /// The type name of a list of field violations.
    public static let fieldViolationsType = "jframe.rpc.v1.FieldViolations"

    /// A `jframe.rpc.v1.FieldViolations` detail.
    public static func fieldViolations(_ violations: [FieldViolation]) -> ErrorDetail {
        ErrorDetail(
            type: fieldViolationsType,
            value: .object([
                "violations": .array(
                    violations.map {
                        .object(["field": .string($0.field), "description": .string($0.description)])
                    })
            ])
        )
    }

    /// The violations this detail lists, when it is a `FieldViolations` detail.
    public var fieldViolations: [FieldViolation]? {
        guard type == Self.fieldViolationsType, case .array(let items)? = value["violations"] else {
            return nil
        }
        return items.compactMap { item in
            guard case .string(let field)? = item["field"], case .string(let text)? = item["description"]
            else { return nil }
            return FieldViolation(field: field, description: text)
        }
    }
}

/// A field of a request that broke a rule: its path (`amount`, `owner.email`) and why.
public struct FieldViolation: Hashable, Sendable {
    public var field: String
    public var description: String

    public init(field: String, description: String) {
        self.field = field
        self.description = description
    }
}
