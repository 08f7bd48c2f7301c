/// Something that happened to an aggregate, named in the past tense (`FundsDeposited`).
///
/// Events are facts: once stored they are never changed, so their JSON shape is a contract. A
/// new shape gets a new `schemaVersion` and an upcaster from the one before (`upcasters`), which
/// every reader of stored events runs (see `EventUpcaster`).
public protocol DomainEvent: Codable, Sendable, Equatable {
    /// The stored and published type name; stable forever.
    static var eventType: String { get }
    /// The version of this type's JSON shape, starting at 1.
    static var schemaVersion: Int { get }
    /// One step from each earlier schema version to the next (`from` 1 to `schemaVersion - 1`).
    static var upcasters: [EventUpcaster] { get }
    /// The stored JSON. Given: JSONEncoder with sorted keys, or the event's own writer when it is
    /// a `JSONMessage` (EventTypeRegistry.swift). A requirement, so that the choice is made once
    /// per type when it conforms rather than by a cast on every event stored.
    func storedJSON() throws -> [UInt8]
}

extension DomainEvent {
    public static var schemaVersion: Int { 1 }
    public static var upcasters: [EventUpcaster] { [] }
}

/// The state of one aggregate, rebuilt by folding its events in order (`apply`).
///
/// Folding never fails and never decides anything: the rules live in the commands, which look at
/// the state and answer with new events. States are `Codable` so they can be snapshotted.
public protocol Aggregate: Codable, Sendable {
    /// The stream category (`BankAccount`): stream ids are `<category>-<aggregate id>`. Contains no `-`.
    static var category: String { get }
    /// The broker topic its events are published on; the category unless a domain says otherwise.
    static var topic: String { get }
    /// The event types this aggregate folds (for decoding stored events).
    static var eventTypes: [any DomainEvent.Type] { get }
    /// The state before any event.
    init()
    /// The state after `event`. Events of types this aggregate does not know leave it unchanged.
    mutating func apply(_ event: any DomainEvent)
}

extension Aggregate {
    public static var topic: String { category }

    /// The stream that holds the events of the aggregate `id`.
    public static func streamId(_ id: String) -> String { "\(category)-\(id)" }

    /// The state after folding `events` into `self`.
    public func applying(_ events: [any DomainEvent]) -> Self {
        var state = self
        for event in events { state.apply(event) }
        return state
    }
}

/// Splits a stream id (`BankAccount-acct-1`) into its category and aggregate id.
public func splitStreamId(_ streamId: String) -> (category: String, aggregateId: String)? {
    guard let dash = streamId.firstIndex(of: "-") else { return nil }
    let category = String(streamId[..<dash])
    let id = String(streamId[streamId.index(after: dash)...])
    return category.isEmpty || id.isEmpty ? nil : (category, id)
}
