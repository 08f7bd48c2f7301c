import Domain

/// Applies one event to the read models: to every registered projection that handles its type.
/// It knows the domains' event types (through the registry) and the projections; it knows nothing
/// of partitions, offsets or parking.
struct Projector: Sendable {
    var registry = Domains.registry
    let projections: [any ReadModelProjection]
    /// Per event type, the indexes of the projections that handle it, in registration order.
    private let handlers: [String: [Int]]

    /// The registered projections' (`ReadSide`), made once: its event-type index is built at init.
    static let registered = Projector()

    init(projections: [any ReadModelProjection] = ReadSide.projections) {
        self.projections = projections
        var handlers: [String: [Int]] = [:]
        for (index, projection) in projections.enumerated() {
            for type in projection.eventTypes { handlers[type, default: []].append(index) }
        }
        self.handlers = handlers
    }

    /// The tables a rebuild replaces whole: every projection's, and the applied stream versions.
    var modelTables: [ReadModelTable] {
        projections.flatMap(\.tables) + [ReadModelTable("streams", orderBy: "stream_id")]
    }

    /// Decodes an event's JSON into its domain type (upcast when stored in an earlier shape).
    /// Pure: a rebuild decodes the next page on another thread while this one is applied.
    func decode(_ event: ProjectedEvent) -> DecodedEvent {
        DecodedEvent(event: event, decoded: Result { try registry.decode(type: event.type, schemaVersion: event.schemaVersion, data: event.data) })
    }

    /// One batch's in-memory state per projection that folds (see `ProjectionBatch`), with the
    /// rows the batch's events touch read up front.
    /// `carried` are the batches of the same writer's previous transaction, when it keeps them
    /// (a rebuild's: see `ProjectionWriter.writesFreshTables`): what they hold is read no more.
    func makeBatches(
        prefetching events: [DecodedEvent], from db: any ReadModelDatabase, carried: [(any ProjectionBatch)?]? = nil
    ) throws -> [(any ProjectionBatch)?] {
        let batches = carried ?? projections.map { $0.makeBatch() }
        for batch in batches { try batch?.prefetch(events, from: db) }
        return batches
    }

    /// Writes every batch's state back.
    func flush(_ batches: [(any ProjectionBatch)?], to db: any ReadModelDatabase) throws {
        for batch in batches { try batch?.flush(to: db) }
    }

    /// Applies `event` to every projection that handles it, or throws (and the caller undoes
    /// its partial changes) when the event cannot be decoded, no projection takes it, or it does
    /// not fit one. `batches` (from `makeBatches`) are used where a failure rolls back the whole
    /// batch.
    func apply(_ event: DecodedEvent, to db: any ReadModelDatabase, batches: [(any ProjectionBatch)?]? = nil) throws {
        let decoded = try event.decoded.get()
        guard let indexes = handlers[event.event.type] else { throw ProjectionError("no read model takes \(event.event.type) events") }
        for index in indexes {
            try projections[index].apply(decoded, event.event, to: db, batch: batches?[index])
        }
    }

    /// Case-insensitive lookup key (holders, emails).
    static func key(_ text: String) -> String { text.lowercased() }
}

/// An event with its JSON decoded (or the reason it could not be).
public struct DecodedEvent: Sendable {
    public var event: ProjectedEvent
    public var decoded: Result<any DomainEvent, any Error>
}
