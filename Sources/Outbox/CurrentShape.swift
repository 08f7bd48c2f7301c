import Domain
import EventStore

extension RecordedEvent {
    /// The event as readers outside the store get it (the relay's records, `ReadStream`,
    /// `ReadAll`, `SubscribeAll`): its JSON in its type's current shape and `schemaVersion` the
    /// current one, so a consumer only ever needs the current shapes. The stored bytes never
    /// change (they are facts, under their checksum). An event this code cannot upcast (a newer
    /// schema version, or a document an upcaster refuses) is given as stored, labelled with its
    /// stored version, for the reader to judge, never guessed at.
    public func inCurrentShape(_ registry: EventTypeRegistry = Domains.registry) -> RecordedEvent {
        guard let current = registry.currentSchemaVersion(of: type), current != schemaVersion,
            let (version, json) = try? registry.upcast(type: type, schemaVersion: schemaVersion, data: data)
        else { return self }
        var upcast = self
        (upcast.schemaVersion, upcast.data) = (version, json)
        return upcast
    }
}
