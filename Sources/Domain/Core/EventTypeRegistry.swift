import Foundation
import JSONCoding

/// Maps stored type names to event types, so stored JSON turns back into typed events.
///
/// Each domain lists its event types once (`Aggregate.eventTypes`); the registry is built from
/// those lists. Registering two types under one name is a programming error and traps, as a
/// duplicate `On<TEvent>` does in Eventuous: silently picking one would corrupt history.
public struct EventTypeRegistry: Sendable {
    private var types: [String: any DomainEvent.Type] = [:]

    public init(_ types: [any DomainEvent.Type] = []) {
        for type in types { register(type) }
    }

    /// A registry of every event type of the given aggregates.
    public init(aggregates: [any Aggregate.Type]) {
        self.init(aggregates.flatMap { $0.eventTypes })
    }

    public mutating func register(_ type: any DomainEvent.Type) {
        if let existing = types[type.eventType] {
            precondition(existing == type, "event type name '\(type.eventType)' registered twice")
        }
        types[type.eventType] = type
    }

    public var typeNames: [String] { types.keys.sorted() }

    /// An event as stored: its type name, schema version and JSON.
    public struct Encoded: Sendable, Hashable {
        public var type: String
        public var schemaVersion: Int
        public var data: [UInt8]
    }

    /// Events that code their own JSON (`JSONMessage`, see EventJSON.swift) skip Codable; others
    /// go through JSONEncoder with sorted keys, the same shape.
    public static func encode(_ event: any DomainEvent) throws -> Encoded {
        let data: [UInt8]
        if let message = event as? any JSONMessage {
            var writer = JSONWriter()
            message.writeJSON(to: &writer)
            data = writer.bytes
        } else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            data = Array(try encoder.encode(event))
        }
        return Encoded(type: Swift.type(of: event).eventType, schemaVersion: Swift.type(of: event).schemaVersion, data: data)
    }

    /// The typed event stored as `type` with `data`. Throws `EventDecodingError` for an unknown
    /// type, a schema version newer than this code knows, or JSON that does not fit the type.
    public func decode(type: String, schemaVersion: Int, data: [UInt8]) throws -> any DomainEvent {
        guard let eventType = types[type] else { throw EventDecodingError(type: type, reason: "unknown event type") }
        guard schemaVersion <= eventType.schemaVersion else {
            throw EventDecodingError(type: type, reason: "schema version \(schemaVersion) is newer than \(eventType.schemaVersion)")
        }
        do {
            if let messageType = eventType as? any JSONMessage.Type {
                var scanner = JSONScanner(data)
                let event = try messageType.init(json: &scanner)
                try scanner.end()
                return event as! any DomainEvent
            }
            return try JSONDecoder().decode(eventType, from: Data(data))
        } catch {
            throw EventDecodingError(type: type, reason: "\(error)")
        }
    }
}

/// A stored event that this code cannot turn back into a typed event.
public struct EventDecodingError: Error, CustomStringConvertible {
    public var type: String
    public var reason: String
    public var description: String { "cannot decode event '\(type)': \(reason)" }
}
