import Foundation
import JSONCoding

/// Maps stored type names to event types, so stored JSON turns back into typed events.
///
/// Each domain lists its event types once (`Aggregate.eventTypes`); the registry is built from
/// those lists. Registering two types under one name is a programming error and traps, as a
/// duplicate `On<TEvent>` does in Eventuous: silently picking one would corrupt history.
public struct EventTypeRegistry: Sendable {
    /// What the registry knows of one type name, found with one lookup per stored event.
    private struct Entry: Sendable {
        var type: any DomainEvent.Type
        /// The step from each earlier schema version (index `from - 1`).
        var upcasters: [EventUpcaster]
        /// Reads the type's current JSON, made at registration with the type opened: casting
        /// each decoded value back to `any DomainEvent` and asking each time whether the type
        /// codes its own JSON cost about 2,000 instructions an event, a quarter of a rebuild's
        /// decoding.
        var decode: @Sendable ([UInt8]) throws -> any DomainEvent
    }

    private var entries: [String: Entry] = [:]

    public init(_ types: [any DomainEvent.Type] = []) {
        for type in types { register(type) }
    }

    /// A registry of every event type of the given aggregates.
    public init(aggregates: [any Aggregate.Type]) {
        self.init(aggregates.flatMap { $0.eventTypes })
    }

    /// Registers a type with its upcasters. A chain with a missing or doubled step traps, like a
    /// doubled name: an event some version could not be read at is history lost.
    public mutating func register(_ type: any DomainEvent.Type) {
        if let existing = entries[type.eventType] {
            precondition(existing.type == type, "event type name '\(type.eventType)' registered twice")
        }
        let steps = type.upcasters.sorted { $0.from < $1.from }
        precondition(
            steps.map(\.from) == Array(1..<max(1, type.schemaVersion)),
            "\(type.eventType) is at schema version \(type.schemaVersion): it needs one upcaster from each of 1..<\(type.schemaVersion)")
        entries[type.eventType] = Entry(type: type, upcasters: steps, decode: Self.decoder(of: type))
    }

    private static func decoder(of type: any DomainEvent.Type) -> @Sendable ([UInt8]) throws -> any DomainEvent {
        if let message = type as? any (DomainEvent & JSONMessage).Type { return messageDecoder(message) }
        return codableDecoder(type)
    }

    private static func messageDecoder<T: DomainEvent & JSONMessage>(_: T.Type) -> @Sendable ([UInt8]) throws -> any DomainEvent {
        { data in
            var scanner = JSONScanner(data)
            let event = try T(json: &scanner)
            try scanner.end()
            return event
        }
    }

    private static func codableDecoder<T: DomainEvent>(_: T.Type) -> @Sendable ([UInt8]) throws -> any DomainEvent {
        { data in try JSONDecoder().decode(T.self, from: Data(data)) }
    }

    public var typeNames: [String] { entries.keys.sorted() }

    /// An event as stored: its type name, schema version and JSON.
    public struct Encoded: Sendable, Hashable {
        public var type: String
        public var schemaVersion: Int
        public var data: [UInt8]
    }

    /// Events that code their own JSON (`JSONMessage`, see EventJSON.swift) skip Codable; others
    /// go through JSONEncoder with sorted keys, the same shape (`DomainEvent.storedJSON`).
    public static func encode(_ event: any DomainEvent) throws -> Encoded {
        Encoded(type: Swift.type(of: event).eventType, schemaVersion: Swift.type(of: event).schemaVersion, data: try event.storedJSON())
    }

    /// The current schema version of `type`, or nil when it is not registered.
    public func currentSchemaVersion(of type: String) -> Int? { entries[type]?.type.schemaVersion }

    /// A stored event's JSON in its type's current shape: run through the upcasters from
    /// `schemaVersion` (unchanged when it is current, or its type unknown). Throws
    /// `EventDecodingError` for a schema version newer than this code knows (never guessed at)
    /// or a document an upcaster refuses.
    public func upcast(type: String, schemaVersion: Int, data: [UInt8]) throws -> (schemaVersion: Int, data: [UInt8]) {
        guard let entry = entries[type] else { return (schemaVersion, data) }
        return try upcast(entry, type: type, schemaVersion: schemaVersion, data: data)
    }

    private func upcast(_ entry: Entry, type: String, schemaVersion: Int, data: [UInt8]) throws -> (schemaVersion: Int, data: [UInt8]) {
        let eventType = entry.type
        guard schemaVersion != eventType.schemaVersion else { return (schemaVersion, data) }
        guard schemaVersion <= eventType.schemaVersion else {
            throw EventDecodingError(type: type, reason: "schema version \(schemaVersion) is newer than \(eventType.schemaVersion)")
        }
        guard schemaVersion >= 1 else { throw EventDecodingError(type: type, reason: "schema version \(schemaVersion) is not 1 or more") }
        do {
            var scanner = JSONScanner(data)
            var document = try scanner.value()
            try scanner.end()
            for step in entry.upcasters[(schemaVersion - 1)...] { document = try step.transform(document) }
            var writer = JSONWriter(capacity: data.count + 16)
            writer.value(document)
            return (eventType.schemaVersion, writer.finish())
        } catch {
            throw EventDecodingError(type: type, reason: "cannot upcast from schema version \(schemaVersion): \(error)")
        }
    }

    /// The typed event stored as `type` with `data`, upcast first when its schema version is an
    /// earlier one. Throws `EventDecodingError` for an unknown type, a schema version newer than
    /// this code knows, or JSON that does not fit the type.
    public func decode(type: String, schemaVersion: Int, data: [UInt8]) throws -> any DomainEvent {
        guard let entry = entries[type] else { throw EventDecodingError(type: type, reason: "unknown event type") }
        let data = try upcast(entry, type: type, schemaVersion: schemaVersion, data: data).data
        do {
            return try entry.decode(data)
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

extension DomainEvent {
    public func storedJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }
}

extension DomainEvent where Self: JSONMessage {
    public func storedJSON() throws -> [UInt8] {
        var writer = JSONWriter()
        writeJSON(to: &writer)
        return writer.finish()
    }
}
