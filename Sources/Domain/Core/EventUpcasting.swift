import JSONCoding

/// One step in an event type's shape history: turns the JSON of schema version `from` into the
/// JSON of version `from + 1`.
///
/// Stored events are facts and are never rewritten; when a type's shape changes, its
/// `schemaVersion` goes up by one and it lists the step from the old shape. Every place that reads
/// stored events (loading an aggregate, the read models' projections, parked-event retries,
/// rebuilds, `ReadStream`/`ReadAll`, the relay) runs the chain through the registry, so each sees
/// only the current shape. Steps work on JSON, not on old Swift types: the old types need not be
/// kept, and a step is a small, testable function of the document.
public struct EventUpcaster: Sendable {
    /// The schema version this step reads.
    public let from: Int
    let transform: @Sendable (JSONValue) throws -> JSONValue

    public init(from: Int, _ transform: @escaping @Sendable (JSONValue) throws -> JSONValue) {
        self.from = from
        self.transform = transform
    }
}

/// Why an upcaster refused a stored document.
public struct UpcastError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension JSONValue {
    /// The members of an object; throws `UpcastError` for any other value.
    public func objectMembers(_ what: String) throws -> [String: JSONValue] {
        guard case .object(let members) = self else { throw UpcastError("\(what) is not a JSON object") }
        return members
    }
}
