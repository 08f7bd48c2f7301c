import SQLite

/// Applies batches of events to one read-model database exactly once in effect. Not thread-safe:
/// its owner (the store's writer, or a rebuild) calls it from one place at a time.
///
/// Rules, per event, inside the batch's transaction:
/// - a record below its partition's stored next offset was applied before: skipped;
/// - a stream with parked events keeps later events behind them (parked as WAITING), so a
///   stream's order holds;
/// - a stream version at or below the stream's applied version is a duplicate: skipped;
/// - a version beyond the next one is a gap: parked as FAILED;
/// - otherwise the projector applies it; if it throws, only that event is undone and it is parked
///   as FAILED with the error, and the others go on. (A batch is first tried without a savepoint
///   per event, two statements less each; if an event throws, that attempt is rolled back and the
///   batch runs again with a savepoint around each event, so the outcome is the same.)
/// Every applied or parked event's global position is marked handled, and the partition's next
/// offset is saved, in the same transaction.
final class ProjectionWriter {
    let db: SQLiteConnection
    let projector: Projector
    let clock: @Sendable () -> Int64
    /// Every position up to this one is handled (applied or parked).
    private(set) var handledThrough: Int64 = 0
    /// Handled positions above `handledThrough` (positions arrive out of order across partitions).
    private var handledAbove: Set<Int64> = []
    private var offsets: [PartitionKey: Int64] = [:]
    /// Streams with parked events (their later events must wait), kept in memory so the common
    /// case costs no query.
    private var parkedStreams: Set<String> = []
    /// Applied stream versions read or written so far; changes are written once per transaction.
    private var versions: [String: Int64] = [:]
    private var changedVersions: Set<String> = []
    /// Cached versions beyond this many are dropped between transactions (memory stays bounded).
    static let versionCacheLimit = 200_000

    struct PartitionKey: Hashable {
        var topic: String
        var partition: Int
    }

    /// What one batch did.
    struct Outcome {
        var applied = 0
        var duplicates = 0
        var parked = 0
        var changes: Set<Projector.Change> = []
    }

    init(db: SQLiteConnection, projector: Projector = Projector(), clock: @escaping @Sendable () -> Int64) throws {
        self.db = db
        self.projector = projector
        self.clock = clock
        try reload()
    }

    /// Reads the bookkeeping back from the database (at open, and after a failed transaction).
    func reload() throws {
        handledThrough = try db.first("SELECT value FROM meta WHERE key = 'handled_through'") { $0.int64(0) } ?? 0
        handledAbove = Set(try db.query("SELECT position FROM handled_positions") { $0.int64(0) })
        parkedStreams = Set(try db.query("SELECT DISTINCT stream_id FROM parked WHERE stream_id <> ''") { $0.text(0) })
        versions = [:]
        changedVersions = []
        offsets = [:]
        for (topic, partition, next) in try db.query("SELECT topic, partition, next_offset FROM offsets", row: { ($0.text(0), Int($0.int64(1)), $0.int64(2)) }) {
            offsets[PartitionKey(topic: topic, partition: partition)] = next
        }
    }

    func nextOffset(topic: String, partition: Int) -> Int64? { offsets[PartitionKey(topic: topic, partition: partition)] }

    var partitionOffsets: [(topic: String, partition: Int, nextOffset: Int64)] {
        offsets.map { ($0.key.topic, $0.key.partition, $0.value) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
    }

    /// Applies one fetched batch of a partition in one transaction.
    func apply(topic: String, partition: Int, records: [IncomingRecord]) throws -> Outcome {
        let key = PartitionKey(topic: topic, partition: partition)
        return try optimistically { isolated in try transaction {
            var outcome = Outcome()
            var next = offsets[key] ?? 0
            for record in records where record.offset >= next {
                switch record.event {
                case .failure(let error):
                    try park(unreadable: record, topic: topic, partition: partition, error: error.description)
                    outcome.parked += 1
                case .success(let event):
                    try handle(
                        projector.decode(event), source: Source(topic: topic, partition: partition, offset: record.offset),
                        isolated: isolated, &outcome)
                }
                next = record.offset + 1
            }
            offsets[key] = next
            try db.run(
                "INSERT INTO offsets(topic, partition, next_offset) VALUES(?, ?, ?) ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset",
                .text(topic), .integer(Int64(partition)), .integer(next))
            return outcome
        } }
    }

    /// Applies events read from the event store in position order (a rebuild), in one transaction.
    func apply(history events: [DecodedEvent]) throws -> Outcome {
        try optimistically { isolated in
            try transaction {
                // The first attempt folds account moves in memory (see AccountFold); the retry
                // with savepoints goes row by row.
                let fold = isolated ? nil : AccountFold()
                var outcome = Outcome()
                for event in events {
                    try handle(
                        event, source: Source(topic: "", partition: 0, offset: event.event.position), isolated: isolated, fold: fold,
                        &outcome)
                }
                try fold?.flush(to: db)
                return outcome
            }
        }
    }

    /// Thrown by `handle` when an event fails outside a savepoint: what it did cannot be undone
    /// alone, so the attempt is rolled back and made again with savepoints.
    private struct EventNeedsIsolation: Error {}

    /// Runs a batch without a savepoint per event (`attempt(false)`); if an event fails, runs it
    /// again with them (`attempt(true)`). `transaction` has rolled the first attempt back and
    /// reloaded the bookkeeping by then.
    private func optimistically(_ attempt: (_ isolated: Bool) throws -> Outcome) throws -> Outcome {
        do {
            return try attempt(false)
        } catch is EventNeedsIsolation {
            return try attempt(true)
        }
    }

    struct Source {
        var topic: String
        var partition: Int
        var offset: Int64
    }

    private func handle(
        _ decoded: DecodedEvent, source: Source, isolated: Bool, fold: AccountFold? = nil, _ outcome: inout Outcome
    ) throws {
        let event = decoded.event
        if parkedStreams.contains(event.streamId), let blocker = try firstParked(event.streamId) {
            if try park(event, source: source, state: "WAITING", error: "waiting behind parked event \(blocker.id) (version \(blocker.version))") {
                outcome.parked += 1
                try markHandled(event.position)
            }
            return
        }
        let applied = try streamVersion(event.streamId)
        if event.streamVersion <= applied {
            outcome.duplicates += 1
            return
        }
        if event.streamVersion != applied + 1 {
            try park(event, source: source, state: "FAILED", error: "gap: the stream is at version \(applied), this event is version \(event.streamVersion)")
            outcome.parked += 1
            try markHandled(event.position)
            return
        }
        do {
            let change =
                isolated ? try db.savepoint { try projector.apply(decoded, to: db) } : try projector.apply(decoded, to: db, fold: fold)
            setStreamVersion(event.streamId, event.streamVersion)
            if let change { outcome.changes.insert(change) }
            outcome.applied += 1
        } catch let error as SQLiteError where !error.isConstraint {
            throw error  // the database itself failed: the whole batch is retried
        } catch {
            guard isolated else { throw EventNeedsIsolation() }
            try park(event, source: source, state: "FAILED", error: "\(error)")
            outcome.parked += 1
        }
        try markHandled(event.position)
    }

    // MARK: Parked events

    struct ParkedEntry {
        var id: Int64
        var state: String
        var event: ProjectedEvent
    }

    private func firstParked(_ streamId: String) throws -> (id: Int64, version: Int64)? {
        try db.first("SELECT id, stream_version FROM parked WHERE stream_id = ? ORDER BY stream_version LIMIT 1", .text(streamId)) {
            ($0.int64(0), $0.int64(1))
        }
    }

    /// Parks an event; false when it was parked before (a duplicate delivery).
    @discardableResult
    private func park(_ event: ProjectedEvent, source: Source, state: String, error: String) throws -> Bool {
        parkedStreams.insert(event.streamId)
        return try db.run(
            """
            INSERT OR IGNORE INTO parked(state, topic, partition, offset, event_id, event_type, stream_id, stream_version, position,
                schema_version, recorded_at, data, error, attempts, parked_at)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
            """,
            .text(state), .text(source.topic), .integer(Int64(source.partition)), .integer(source.offset), .text(event.eventId),
            .text(event.type), .text(event.streamId), .integer(event.streamVersion), .integer(event.position),
            .integer(Int64(event.schemaVersion)), .integer(event.recordedAt), .blob(event.data), .text(error), .integer(clock())) == 1
    }

    private func park(unreadable record: IncomingRecord, topic: String, partition: Int, error: String) throws {
        try db.run(
            """
            INSERT INTO parked(state, topic, partition, offset, event_id, event_type, stream_id, stream_version, position,
                schema_version, recorded_at, data, error, attempts, parked_at)
            VALUES('FAILED', ?, ?, ?, '', '', '', 0, 0, 0, 0, ?, ?, 1, ?)
            """,
            .text(topic), .integer(Int64(partition)), .integer(record.offset), record.value.map { .blob($0) } ?? .null,
            .text("unreadable record (key \(record.key ?? "null")): \(error)"), .integer(clock()))
    }

    /// Retries (or, with `skip`, drops) the selected FAILED events; the WAITING events of their
    /// streams then follow in version order until one fails again.
    func resolveParked(ids: [Int64]?, skip: Bool) throws -> (applied: Int, skipped: Int, changes: Set<Projector.Change>) {
        try transaction {
            let selected: [(Int64, String, Int64)] =
                try ids.map { ids in
                    try ids.compactMap { id in
                        try db.first("SELECT id, stream_id, stream_version FROM parked WHERE id = ? AND state = 'FAILED'", .integer(id)) {
                            ($0.int64(0), $0.text(1), $0.int64(2))
                        }
                    }
                } ?? db.query("SELECT id, stream_id, stream_version FROM parked WHERE state = 'FAILED' ORDER BY id") { ($0.int64(0), $0.text(1), $0.int64(2)) }
            var applied = 0
            var skipped = 0
            var changes: Set<Projector.Change> = []
            for (id, streamId, version) in selected {
                if streamId.isEmpty {
                    // An unreadable record: nothing to apply; retry leaves it, skip drops it.
                    if skip { try db.run("DELETE FROM parked WHERE id = ?", .integer(id)); skipped += 1 }
                    continue
                }
                if skip {
                    try db.run("DELETE FROM parked WHERE id = ?", .integer(id))
                    if try streamVersion(streamId) < version { setStreamVersion(streamId, version) }
                    skipped += 1
                }
                // Apply the stream's parked events in order while they succeed.
                for entry in try parkedEntries(streamId) {
                    let current = try streamVersion(streamId)
                    if entry.event.streamVersion <= current {
                        try db.run("DELETE FROM parked WHERE id = ?", .integer(entry.id))
                        continue
                    }
                    guard entry.event.streamVersion == current + 1 else {
                        try markFailed(entry.id, "gap: the stream is at version \(current), this event is version \(entry.event.streamVersion)")
                        break
                    }
                    do {
                        let change = try db.savepoint { try projector.apply(projector.decode(entry.event), to: db) }
                        setStreamVersion(streamId, entry.event.streamVersion)
                        try db.run("DELETE FROM parked WHERE id = ?", .integer(entry.id))
                        if let change { changes.insert(change) }
                        applied += 1
                    } catch let error as SQLiteError where !error.isConstraint {
                        throw error
                    } catch {
                        try markFailed(entry.id, "\(error)")
                        break
                    }
                }
            }
            parkedStreams = Set(try db.query("SELECT DISTINCT stream_id FROM parked WHERE stream_id <> ''") { $0.text(0) })
            return (applied, skipped, changes)
        }
    }

    private func markFailed(_ id: Int64, _ error: String) throws {
        try db.run("UPDATE parked SET state = 'FAILED', error = ?, attempts = attempts + 1 WHERE id = ?", .text(error), .integer(id))
    }

    private func parkedEntries(_ streamId: String) throws -> [ParkedEntry] {
        try db.query(
            """
            SELECT id, state, event_id, event_type, stream_version, position, schema_version, recorded_at, data
            FROM parked WHERE stream_id = ? ORDER BY stream_version
            """, .text(streamId)
        ) {
            ParkedEntry(
                id: $0.int64(0), state: $0.text(1),
                event: ProjectedEvent(
                    eventId: $0.text(2), streamId: streamId, type: $0.text(3), schemaVersion: Int($0.int64(6)), streamVersion: $0.int64(4),
                    position: $0.int64(5), recordedAt: $0.int64(7), data: $0.bytes(8)))
        }
    }

    // MARK: Bookkeeping

    func streamVersion(_ streamId: String) throws -> Int64 {
        if let cached = versions[streamId] { return cached }
        let stored = try db.first("SELECT version FROM streams WHERE stream_id = ?", .text(streamId)) { $0.int64(0) } ?? 0
        versions[streamId] = stored
        return stored
    }

    private func setStreamVersion(_ streamId: String, _ version: Int64) {
        versions[streamId] = version
        changedVersions.insert(streamId)
    }

    /// Writes the stream versions changed in this transaction.
    private func saveStreamVersions() throws {
        for streamId in changedVersions {
            try db.run(
                "INSERT INTO streams(stream_id, version) VALUES(?, ?) ON CONFLICT DO UPDATE SET version = excluded.version",
                .text(streamId), .integer(versions[streamId] ?? 0))
        }
        changedVersions = []
    }

    /// Marks a global position handled and moves `handledThrough` over every contiguous one.
    private func markHandled(_ position: Int64) throws {
        guard position > handledThrough, !handledAbove.contains(position) else { return }
        if position == handledThrough + 1 {
            handledThrough = position
            while handledAbove.remove(handledThrough + 1) != nil { handledThrough += 1 }
        } else {
            handledAbove.insert(position)
            try db.run("INSERT OR IGNORE INTO handled_positions(position) VALUES(?)", .integer(position))
        }
    }

    /// Sets the handled watermark directly (a rebuild read every position up to it).
    func setHandledThrough(_ position: Int64) throws {
        handledThrough = max(handledThrough, position)
        handledAbove = handledAbove.filter { $0 > handledThrough }
        while handledAbove.remove(handledThrough + 1) != nil { handledThrough += 1 }
        try saveHandled()
    }

    private func saveHandled() throws {
        try db.run(
            "INSERT INTO meta(key, value) VALUES('handled_through', ?) ON CONFLICT DO UPDATE SET value = excluded.value",
            .integer(handledThrough))
        try db.run("DELETE FROM handled_positions WHERE position <= ?", .integer(handledThrough))
    }

    /// Runs `body` in a transaction with the handled watermark saved at the end; on failure the
    /// in-memory bookkeeping is read back so it matches the database again.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        let before = handledThrough
        do {
            let result = try db.transaction {
                let result = try body()
                try saveStreamVersions()
                if handledThrough != before { try saveHandled() }
                return result
            }
            if versions.count > Self.versionCacheLimit { versions = [:] }
            return result
        } catch {
            try? reload()
            throw error
        }
    }
}
