/// The checks every store makes before an append, written once so the stores cannot disagree.
public enum AppendRules {
    static let maxEventsPerAppend = 1000
    static let maxStreamIdLength = 256

    /// Refuses requests no store can take: no events, a blank or over-long stream id, a blank or
    /// repeated event id, empty data.
    public static func validate(_ request: AppendRequest) throws {
        guard !request.streamId.isEmpty, request.streamId.utf8.count <= maxStreamIdLength else {
            throw EventStoreError.invalid("a stream id must be 1 to \(maxStreamIdLength) bytes")
        }
        guard !request.events.isEmpty else { throw EventStoreError.invalid("an append needs at least one event") }
        guard request.events.count <= maxEventsPerAppend else {
            throw EventStoreError.invalid("an append takes at most \(maxEventsPerAppend) events, not \(request.events.count)")
        }
        // Most appends carry one event: no set of ids to build for them.
        let several = request.events.count > 1
        var seen = several ? Set<String>(minimumCapacity: request.events.count) : []
        for event in request.events {
            guard !event.eventId.isEmpty else { throw EventStoreError.invalid("an event id must not be empty") }
            guard !several || seen.insert(event.eventId).inserted else {
                throw EventStoreError.invalid("event id \(event.eventId) appears twice")
            }
            guard !event.type.isEmpty, !event.data.isEmpty else { throw EventStoreError.invalid("an event needs a type and data") }
        }
    }

    /// Refuses a page size outside 1...10000.
    public static func checkPage(_ maxCount: Int) throws {
        guard (1...10_000).contains(maxCount) else { throw EventStoreError.invalid("a page holds 1 to 10000 events, not \(maxCount)") }
    }

    /// What an append whose command id the store has seen returns: the first result, when the
    /// command is the same (same digest, or either digest unknown); `commandIdReused` otherwise.
    public static func repeated(_ request: AppendRequest, earlier: AppendResult) throws -> AppendResult {
        try checkSameCommand(request.commandId ?? "", digest: request.commandDigest, earlier: earlier)
        var result = earlier
        result.duplicate = true
        return result
    }

    /// Throws `commandIdReused` when `earlier` was stored for a command with another digest.
    public static func checkSameCommand(_ commandId: String, digest: String?, earlier: AppendResult) throws {
        if let digest, let stored = earlier.commandDigest, !stored.isEmpty, stored != digest {
            throw EventStoreError.commandIdReused(commandId: commandId, streamId: earlier.streamId)
        }
    }

    /// Decides what stored events with the request's ids mean (`stored[i]` holds the event with
    /// `request.events[i].eventId`, or nil): none stored, append; all stored with the same stream,
    /// type and data, a retry whose first result is returned; anything else, a conflict.
    public static func duplicate(of request: AppendRequest, stored: [RecordedEvent?]) throws -> AppendResult? {
        if stored.allSatisfy({ $0 == nil }) { return nil }
        for (event, found) in zip(request.events, stored) {
            guard let found else {
                throw EventStoreError.eventIdConflict(eventId: event.eventId, reason: "only some of the append's event ids are stored")
            }
            guard found.streamId == request.streamId, found.type == event.type, found.data == event.data else {
                throw EventStoreError.eventIdConflict(eventId: event.eventId, reason: "already stored with different content")
            }
        }
        let last = stored.last!!
        return AppendResult(streamId: last.streamId, version: last.streamVersion, position: last.position, duplicate: true)
    }
}
