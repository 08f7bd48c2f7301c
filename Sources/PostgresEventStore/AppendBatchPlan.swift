import EventStore

/// Decides a batch of appends in memory, against what the database held when the batch's
/// transaction took the head lock: the same rules as every store (`AppendRules`), each append
/// seeing the ones before it in the batch. No I/O: the store reads what the batch touches in
/// three queries, lets the plan decide, and writes the rows it made (and the new head) in one.
///
/// That keeps a transaction at a fixed number of round trips whatever its size, where checking
/// and inserting append by append cost about five per append.
struct AppendBatchPlan {
    private(set) var head: Int64
    private var commands: [String: AppendResult]
    private var events: [String: RecordedEvent]
    private var versions: [String: Int64]
    /// The rows to insert, in position order.
    private(set) var newEvents: [RecordedEvent] = []
    private(set) var newCommands: [(commandId: String, result: AppendResult, digest: String)] = []

    /// `commands`, `events` and `versions` hold what is stored of the batch's command ids, event
    /// ids and streams (a stream absent from `versions` has no events).
    init(head: Int64, commands: [String: AppendResult], events: [String: RecordedEvent], versions: [String: Int64]) {
        self.head = head
        self.commands = commands
        self.events = events
        self.versions = versions
    }

    /// A stream's version as the plan stands (0: no events).
    func version(of streamId: String) -> Int64 { versions[streamId] ?? 0 }

    /// The result of one append, or the `EventStoreError` that refuses it (it then changes
    /// nothing). Checked in the order `EventAppender` promises: command id, event ids, version.
    mutating func decide(_ request: AppendRequest, recordedAt: Int64) throws -> AppendResult {
        if let commandId = request.commandId, let earlier = commands[commandId] {
            return try AppendRules.repeated(request, earlier: earlier)
        }
        if let earlier = try AppendRules.duplicate(of: request, stored: request.events.map { events[$0.eventId] }) {
            return earlier
        }
        let version = versions[request.streamId] ?? 0
        guard request.expected.accepts(version) else {
            throw EventStoreError.wrongExpectedVersion(streamId: request.streamId, expected: request.expected, actual: version)
        }
        var streamVersion = version
        for event in request.events {
            head += 1
            streamVersion += 1
            let stored = RecordedEvent(
                eventId: event.eventId, streamId: request.streamId, type: event.type, schemaVersion: event.schemaVersion,
                streamVersion: streamVersion, position: head, recordedAt: recordedAt, correlationId: event.correlationId,
                causationId: event.causationId, data: event.data, traceParent: event.traceParent)
            newEvents.append(stored)
            events[event.eventId] = stored
        }
        versions[request.streamId] = streamVersion
        let result = AppendResult(streamId: request.streamId, version: streamVersion, position: head)
        if let commandId = request.commandId {
            var remembered = result
            remembered.commandDigest = request.commandDigest ?? ""
            commands[commandId] = remembered
            newCommands.append((commandId, result, request.commandDigest ?? ""))
        }
        return result
    }
}
