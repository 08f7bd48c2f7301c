import SQLite
import WallTime

/// Applies batches of events to one read-model database exactly once in effect. Not thread-safe:
/// its owner (the store's writer, or a rebuild) calls it from one place at a time.
///
/// Rules, per event, inside the batch's transaction:
/// - a record below its partition's stored next offset was applied before: skipped;
/// - a stream with parked events keeps later events behind them (parked as WAITING), so a
///   stream's order holds;
/// - an event claiming a stream version that a different event holds (the version last applied,
///   or a parked entry's) is parked as CONFLICT: two records cannot both be the store's event, so
///   neither wins silently (see `resolveParked`);
/// - a stream version at or below the stream's applied version is otherwise a duplicate: skipped
///   (only the last applied event's id is kept, so an older version is not compared);
/// - a version beyond the next one is a gap: parked as FAILED;
/// - otherwise the projector applies it; if it throws, only that event is undone and it is parked
///   as FAILED with the error, and the others go on. (A batch is first tried without a savepoint
///   per event, two statements less each; if an event throws, that attempt is rolled back and the
///   batch runs again with a savepoint around each event, so the outcome is the same.)
/// Every applied or parked event's global position is marked handled, and the partition's next
/// offset is saved, in the same transaction.
///
/// With a shared backend (several processes writing the same models), each transaction first
/// takes its turn and reads the bookkeeping back, so nothing cached from an earlier transaction
/// is trusted: another process may have applied the partition, the stream or the position since.
final class ProjectionWriter {
    let db: any ReadModelDatabase
    let projector: Projector
    let clock: any WallClock
    let sharing: (any ReadModelSharing)?
    /// Streams with an event applied by the current transaction, for `ReadModelSharing.announce`
    /// (kept only where the models are shared).
    private var changedStreams: Set<String> = []
    /// Every position up to this one is handled (applied or parked).
    private(set) var handledThrough: Int64 = 0
    /// Handled positions above `handledThrough` (positions arrive out of order across partitions).
    private var handledAbove: Set<Int64> = []
    private var offsets: [PartitionKey: Int64] = [:]
    /// Streams with parked events (their later events must wait), kept in memory so the common
    /// case costs no query.
    private var parkedStreams: Set<String> = []
    /// Applied stream versions (with the event applied at each) read or written so far; changes
    /// are written once per transaction.
    private var versions: [String: CachedHead] = [:]
    /// The streams whose head this transaction changed, each once (in the order of their first
    /// change), to be written at its end.
    private var changedVersions: [String] = []
    /// The number of the current transaction: a cached head changed in it carries it, so a
    /// change costs one hash of the stream id (no set of changed ids to insert into and clear).
    private var transactionNumber: UInt64 = 1
    /// Cached versions beyond this many are dropped between transactions (memory stays bounded).
    static let versionCacheLimit = 200_000
    /// Set for a rebuild's writer: the only writer of tables it found empty. So the projections'
    /// batches of a committed transaction carry into the next (`ProjectionBatch`) and what they
    /// hold is not read back, and a stream it holds no version of has none (`versionsComplete`),
    /// so no stream head is read at all. On PostgreSQL each such read is a scan of the growing
    /// table per few hundred ids (a fresh table's planner prefers it to that many index probes):
    /// reads of streams and accounts were a fifth of a rebuild's time. The accounts a rebuild
    /// has not seen yet are still asked for (they cannot be there; see the note in the fold).
    var writesFreshTables = false {
        didSet { versionsComplete = writesFreshTables }
    }
    /// Every stream with a stored version is in `versions`: a fresh writer's until its cache is
    /// dropped (its limit, or a failed transaction's reload), so it never asks the database.
    private var versionsComplete = false
    private var carriedBatches: [(any ProjectionBatch)?]?

    /// A stream's applied version and the id of the event applied at it ("" when unknown: applied
    /// before the read models kept event ids, or never).
    struct StreamHead: Equatable {
        var version: Int64
        var eventId: String
        static let empty = StreamHead(version: 0, eventId: "")
    }

    /// A stream head as cached: read (`changedIn` 0) or changed in transaction `changedIn`.
    struct CachedHead {
        var head: StreamHead
        var changedIn: UInt64 = 0
    }

    struct PartitionKey: Hashable {
        var topic: String
        var partition: Int
    }

    /// What one batch did.
    struct Outcome {
        var applied = 0
        var duplicates = 0
        var parked = 0
        /// Streams with an event applied (watchers of them are told).
        var changes: Set<String> = []
        /// False where no watcher is told (a rebuild's models answer no query until the swap,
        /// which tells every watcher): `changes` stays empty, a set insert per event saved.
        var tracksChanges = true

        mutating func changed(_ streamId: String) {
            if tracksChanges { changes.insert(streamId) }
        }
    }

    init(db: any ReadModelDatabase, projector: Projector = .registered, clock: any WallClock, sharing: (any ReadModelSharing)? = nil) throws {
        self.db = db
        self.projector = projector
        self.clock = clock
        self.sharing = sharing
        try reload()
    }

    /// Reads the bookkeeping back when other processes write too (before answering what the
    /// stored offsets are).
    func refreshShared() throws {
        if sharing != nil { try reload() }
    }

    /// The current transaction may have changed any stream's rows (a rebuild's swap): the other
    /// processes' watchers are all told.
    func markEverythingChanged() { changedStreams = Self.everything }
    private static let everything: Set<String> = ["*"]

    /// Reads the bookkeeping back from the database (at open, and after a failed transaction).
    func reload() throws {
        // One statement (a round trip each counts when the database is across the network).
        let rows = try db.query(
            """
            SELECT 'h', '', value, 0 FROM meta WHERE key = 'handled_through'
            UNION ALL SELECT 'a', '', position, 0 FROM handled_positions
            UNION ALL SELECT DISTINCT 'p', stream_id, 0, 0 FROM parked WHERE stream_id <> ''
            UNION ALL SELECT 'o', topic, partition, next_offset FROM offsets
            """, []
        ) { ($0.text(0), $0.text(1), $0.int64(2), $0.int64(3)) }
        handledThrough = 0
        handledAbove = []
        parkedStreams = []
        versions = [:]
        versionsComplete = false
        changedVersions = []
        offsets = [:]
        for (kind, text, number, next) in rows {
            switch kind {
            case "h": handledThrough = number
            case "a": handledAbove.insert(number)
            case "p": parkedStreams.insert(text)
            default: offsets[PartitionKey(topic: text, partition: Int(number))] = next
            }
        }
    }

    /// Reads the applied heads of `streamIds` not cached yet, a few hundred per statement, so a
    /// batch asks for its streams once instead of event by event.
    private func prefetchStreamHeads<S: Sequence<String>>(_ streamIds: S) throws {
        guard !versionsComplete else { return }
        var missing: [String] = []
        var seen = Set<String>()
        for id in streamIds where versions[id] == nil && seen.insert(id).inserted { missing.append(id) }
        for start in stride(from: 0, to: missing.count, by: 500) {
            let chunk = Array(missing[start..<min(start + 500, missing.count)])
            for id in chunk { versions[id] = CachedHead(head: .empty) }
            let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            for (id, head) in try db.query(
                "SELECT stream_id, version, event_id FROM streams WHERE stream_id IN (\(placeholders))", chunk.map { .text($0) },
                row: { ($0.text(0), StreamHead(version: $0.int64(1), eventId: $0.text(2))) })
            {
                versions[id] = CachedHead(head: head)
            }
        }
    }

    func nextOffset(topic: String, partition: Int) -> Int64? { offsets[PartitionKey(topic: topic, partition: partition)] }

    var partitionOffsets: [(topic: String, partition: Int, nextOffset: Int64)] {
        offsets.map { ($0.key.topic, $0.key.partition, $0.value) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
    }

    /// Applies one fetched batch of a partition in one transaction.
    func apply(topic: String, partition: Int, records: [IncomingRecord]) throws -> Outcome {
        let key = PartitionKey(topic: topic, partition: partition)
        return try optimistically { isolated in
            try transaction {
                var outcome = Outcome()
                var next = offsets[key] ?? 0
                let fresh = records.filter { $0.offset >= next }
                let decoded = fresh.map { record in (try? record.event.get()).map(projector.decode) }
                try prefetchStreamHeads(decoded.compactMap { $0?.event.streamId })
                // As for a rebuild page: the first attempt folds in memory what projections fold.
                let batches = isolated ? nil : try projector.makeBatches(prefetching: decoded.compactMap { $0 }, from: db)
                for (record, event) in zip(fresh, decoded) {
                    if let event {
                        try handle(
                            event, source: Source(topic: topic, partition: partition, offset: record.offset), isolated: isolated,
                            batches: batches, &outcome)
                    } else if case .failure(let error) = record.event {
                        try park(unreadable: record, topic: topic, partition: partition, error: error.description)
                        outcome.parked += 1
                    }
                    next = record.offset + 1
                }
                if let batches { try projector.flush(batches, to: db) }
                offsets[key] = next
                try db.run(
                    "INSERT INTO offsets(topic, partition, next_offset) VALUES(?, ?, ?) ON CONFLICT(topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                    .text(topic), .integer(Int64(partition)), .integer(next))
                return outcome
            }
        }
    }

    /// Applies events read from the event store in position order (a rebuild), in one transaction.
    func apply(history events: [DecodedEvent]) throws -> Outcome {
        // Taken now: a failed attempt leaves them disagreeing with the rows.
        let carried = carriedBatches
        carriedBatches = nil
        var committed: [(any ProjectionBatch)?]?
        let outcome = try optimistically { isolated in
            committed = nil
            return try transaction {
                // The first attempt folds in memory what projections fold (`ProjectionBatch`); the
                // retry with savepoints goes row by row.
                var outcome = Outcome(tracksChanges: false)
                try prefetchStreamHeads(events.lazy.map(\.event.streamId))
                let batches = isolated ? nil : try projector.makeBatches(prefetching: events, from: db, carried: carried)
                // By index: each event is borrowed where it lies, not copied out (a retain and a
                // release of each of its references) as a for-in loop binds it.
                for index in events.indices {
                    try handle(
                        events[index], source: Source(topic: "", partition: 0, offset: events[index].event.position), isolated: isolated,
                        batches: batches, &outcome)
                }
                if let batches { try projector.flush(batches, to: db) }
                committed = batches
                return outcome
            }
        }
        if writesFreshTables { carriedBatches = committed }
        return outcome
    }

    /// Thrown by `handle` when an event fails outside a savepoint: what it did cannot be undone
    /// alone, so the attempt is rolled back and made again with savepoints.
    private struct EventNeedsIsolation: Error {}

    /// Runs a batch without a savepoint per event (`attempt(false)`); if an event fails, runs it
    /// again with them (`attempt(true)`). `transaction` has rolled the first attempt back and
    /// reloaded the bookkeeping by then. A constraint failure outside any event's statements
    /// (an insert the database held and sent later, `ReadModelDatabase.insert`) is an event's
    /// too: the savepoints then tell which.
    private func optimistically(_ attempt: (_ isolated: Bool) throws -> Outcome) throws -> Outcome {
        do {
            return try attempt(false)
        } catch is EventNeedsIsolation {
            return try attempt(true)
        } catch let error as any ReadModelDatabaseFailure where error.isConstraint {
            return try attempt(true)
        }
    }

    struct Source {
        var topic: String
        var partition: Int
        var offset: Int64
    }

    private func handle(
        _ decoded: DecodedEvent, source: Source, isolated: Bool, batches: [(any ProjectionBatch)?]?, _ outcome: inout Outcome
    ) throws {
        let event = decoded.event
        // Events of a stream wait behind its lowest parked version, so none is applied out of
        // order; the stream's next version below it is not out of order, and goes on. (A record
        // claiming a version ahead of the stream, parked for the gap, must not hold back the real
        // events that fill it: a relay behind a forger's record, or one a bus delayed.)
        if parkedStreams.contains(event.streamId), let blocker = try firstParked(event.streamId),
            try !(event.streamVersion < blocker.version && event.streamVersion == streamHead(event.streamId).version + 1)
        {
            var (state, error) = ("WAITING", "waiting behind parked event \(blocker.id) (version \(blocker.version))")
            if let rival = try parkedRival(of: event) {
                // Both are claimants now: a skip of all CONFLICT records must see the parked one too.
                (state, error) = (
                    "CONFLICT", "\(event.streamId) version \(event.streamVersion) is claimed by parked event \(rival.id) (event \(rival.eventId)) too"
                )
                try db.run(
                    "UPDATE parked SET state = 'CONFLICT', error = ? WHERE stream_id = ? AND stream_version = ? AND event_id <> ?",
                    .text("\(event.streamId) version \(event.streamVersion) is claimed by event \(event.eventId) too"), .text(event.streamId),
                    .integer(event.streamVersion), .text(event.eventId))
            }
            if try park(event, source: source, state: state, error: error) {
                outcome.parked += 1
                try markHandled(event.position)
            }
            return
        }
        // The stream's cache entry, found (or made) once and written through its index after
        // the apply: nothing in between changes the cache.
        let headIndex = try streamHeadIndex(event.streamId)
        let applied = versions.values[headIndex].head
        if event.streamVersion == applied.version, !applied.eventId.isEmpty, applied.eventId != event.eventId {
            try park(
                event, source: source, state: "CONFLICT",
                error:
                    "\(event.streamId) version \(event.streamVersion) was applied from event \(applied.eventId); this record claims it for event \(event.eventId)"
            )
            outcome.parked += 1
            try markHandled(event.position)
            return
        }
        if event.streamVersion <= applied.version {
            outcome.duplicates += 1
            return
        }
        if event.streamVersion != applied.version + 1 {
            try park(
                event, source: source, state: "FAILED",
                error: "gap: the stream is at version \(applied.version), this event is version \(event.streamVersion)")
            outcome.parked += 1
            try markHandled(event.position)
            return
        }
        do {
            if isolated {
                try db.inSavepoint { try projector.apply(decoded, to: db) }
            } else {
                try projector.apply(decoded, to: db, batches: batches)
            }
            setStreamHead(at: headIndex, StreamHead(version: event.streamVersion, eventId: event.eventId))
            outcome.changed(event.streamId)
            if sharing != nil { changedStreams.insert(event.streamId) }
            outcome.applied += 1
        } catch let error as any ReadModelDatabaseFailure where !error.isConstraint {
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

    /// A parked entry holding `event`'s stream version under another event id (or, with
    /// `sameId`, under its own).
    private func parkedRival(of event: ProjectedEvent, sameId: Bool = false) throws -> (id: Int64, eventId: String)? {
        try db.first(
            "SELECT id, event_id FROM parked WHERE stream_id = ? AND stream_version = ? AND (CASE WHEN event_id = ? THEN 1 ELSE 0 END) = ? ORDER BY id LIMIT 1",
            .text(event.streamId), .integer(event.streamVersion), .text(event.eventId), .integer(sameId ? 1 : 0)
        ) { ($0.int64(0), $0.text(1)) }
    }

    /// Parks an event; false when it was parked before (a duplicate delivery).
    @discardableResult
    private func park(_ event: ProjectedEvent, source: Source, state: String, error: String) throws -> Bool {
        parkedStreams.insert(event.streamId)
        return try db.run(
            """
            INSERT INTO parked(state, topic, partition, "offset", event_id, event_type, stream_id, stream_version, position,
                schema_version, recorded_at, data, error, attempts, parked_at)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING
            """,
            .text(state), .text(source.topic), .integer(Int64(source.partition)), .integer(source.offset), .text(event.eventId),
            .text(event.type), .text(event.streamId), .integer(event.streamVersion), .integer(event.position),
            .integer(Int64(event.schemaVersion)), .integer(event.recordedAt), .blob(event.data), .text(error), .integer(clock.nowMilliseconds())) == 1
    }

    private func park(unreadable record: IncomingRecord, topic: String, partition: Int, error: String) throws {
        try db.run(
            """
            INSERT INTO parked(state, topic, partition, "offset", event_id, event_type, stream_id, stream_version, position,
                schema_version, recorded_at, data, error, attempts, parked_at)
            VALUES('FAILED', ?, ?, ?, '', '', '', 0, 0, 0, 0, ?, ?, 1, ?)
            """,
            .text(topic), .integer(Int64(partition)), .integer(record.offset), record.value.map { .blob($0) } ?? .null,
            .text("unreadable record (key \(record.key ?? "null")): \(error)"), .integer(clock.nowMilliseconds()))
    }

    struct Resolution {
        var applied = 0
        var skipped = 0
        /// ParkedClaim records a skip left parked: the store holds them (or could not be asked).
        var kept: [Int64] = []
        /// Streams with an event applied.
        var changes: Set<String> = []
    }

    /// The FAILED and CONFLICT records `ids` names (all of them when nil); WAITING ones follow
    /// their stream and are not selected, except by a skip of all (`skipping` and no ids): a
    /// record waiting behind one the store holds may itself be one it does not (a forger's next
    /// claim on the same stream), and "all" leaves parked only the store's own events.
    func selectParked(ids: [Int64]?, skipping: Bool = false) throws -> [ParkedClaim] {
        let columns = "SELECT id, stream_id, stream_version, event_id, state FROM parked"
        let row = { (row: any ReadModelRow) in
            ParkedClaim(id: row.int64(0), streamId: row.text(1), streamVersion: row.int64(2), eventId: row.text(3), waiting: row.text(4) == "WAITING")
        }
        guard let ids else {
            let states = skipping ? "'FAILED', 'CONFLICT', 'WAITING'" : "'FAILED', 'CONFLICT'"
            return try db.query("\(columns) WHERE state IN (\(states)) ORDER BY id", row: row)
        }
        return try ids.compactMap { try db.first("\(columns) WHERE id = ? AND state IN ('FAILED', 'CONFLICT')", .integer($0), row: row) }
    }

    /// Retries (or, with `skip`, drops) the selected FAILED and CONFLICT records; each affected
    /// stream then applies its parked events in version order until one fails or conflicts.
    ///
    /// A skip drops a record only when `stored` says the event store does not hold it (`absent`
    /// or `other`); the store's own events stay parked (`kept`): the read models must apply them
    /// (fix the projector and retry) or a rebuild must. An unreadable record (no event identity)
    /// is dropped by a skip without asking.
    func resolveParked(ids: [Int64]?, skip: Bool, stored: [Int64: StoreVerdict] = [:]) throws -> Resolution {
        try transaction {
            var resolution = Resolution()
            var streams: [String] = []
            for selected in try selectParked(ids: ids, skipping: skip) {
                if selected.streamId.isEmpty {
                    // An unreadable record: nothing to apply; retry leaves it, skip drops it.
                    if skip {
                        try delete(selected.id)
                        resolution.skipped += 1
                    }
                    continue
                }
                if skip {
                    switch stored[selected.id] {
                    case nil, .same?:
                        // A waiting event of the store's keeps waiting; it is not a kept claim.
                        if !selected.waiting { resolution.kept.append(selected.id) }
                        continue
                    case .absent?:
                        try delete(selected.id)
                    case .other(let real)?:
                        try delete(selected.id)
                        if real.streamVersion > (try streamHead(real.streamId)).version, try parkedRival(of: real, sameId: true) == nil {
                            try park(
                                real, source: Source(topic: "", partition: 0, offset: real.position), state: "WAITING",
                                error: "the event store's event at this version, fetched when parked record \(selected.id) was skipped")
                            try markHandled(real.position)
                        }
                    }
                    resolution.skipped += 1
                }
                if !streams.contains(selected.streamId) { streams.append(selected.streamId) }
            }
            for streamId in streams { try settle(streamId, &resolution) }
            parkedStreams = Set(try db.query("SELECT DISTINCT stream_id FROM parked WHERE stream_id <> ''") { $0.text(0) })
            return resolution
        }
    }

    /// Applies a stream's parked events in version order while they succeed: each must be the
    /// one record at the next version. Stops at a gap, a failure, or a version two records claim
    /// (both marked CONFLICT: only a skip checked against the store, or a rebuild, chooses).
    private func settle(_ streamId: String, _ resolution: inout Resolution) throws {
        let entries = try parkedEntries(streamId)
        for (index, entry) in entries.enumerated() {
            let head = try streamHead(streamId)
            let version = entry.event.streamVersion
            if version < head.version {
                // Applied since it was parked (older versions' event ids are not kept to compare).
                if entry.state != "CONFLICT" { try delete(entry.id) }
                continue
            }
            if version == head.version {
                if entry.event.eventId == head.eventId || (head.eventId.isEmpty && entry.state != "CONFLICT") {
                    try delete(entry.id)
                    continue
                }
                try mark(
                    entry.id, "CONFLICT",
                    "\(streamId) version \(version) was applied from event \(head.eventId); this record claims it for event \(entry.event.eventId)")
                return
            }
            guard version == head.version + 1 else {
                try mark(entry.id, "FAILED", "gap: the stream is at version \(head.version), this event is version \(version)")
                return
            }
            let claimants = entries[index...].prefix { $0.event.streamVersion == version }
            if claimants.count > 1 {
                for claimant in claimants {
                    try mark(
                        claimant.id, "CONFLICT",
                        "\(claimants.count) records claim \(streamId) version \(version): skip those the event store does not hold")
                }
                return
            }
            do {
                try db.inSavepoint { try projector.apply(projector.decode(entry.event), to: db) }
                setStreamHead(at: try streamHeadIndex(streamId), StreamHead(version: version, eventId: entry.event.eventId))
                try delete(entry.id)
                resolution.changes.insert(streamId)
                if sharing != nil { changedStreams.insert(streamId) }
                resolution.applied += 1
            } catch let error as any ReadModelDatabaseFailure where !error.isConstraint {
                throw error
            } catch {
                try mark(entry.id, "FAILED", "\(error)")
                return
            }
        }
    }

    private func delete(_ id: Int64) throws {
        try db.run("DELETE FROM parked WHERE id = ?", .integer(id))
    }

    /// Sets a parked record's state and error; a retry's failure counts as an attempt.
    private func mark(_ id: Int64, _ state: String, _ error: String) throws {
        try db.run(
            "UPDATE parked SET state = ?, error = ?, attempts = attempts + 1 WHERE id = ?", .text(state), .text(error), .integer(id))
    }

    private func parkedEntries(_ streamId: String) throws -> [ParkedEntry] {
        try db.query(
            """
            SELECT id, state, event_id, event_type, stream_version, position, schema_version, recorded_at, data
            FROM parked WHERE stream_id = ? ORDER BY stream_version, id
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

    /// Where `streamId`'s head is in the cache, read into it first if it is not there (a stream
    /// a complete cache does not hold has no version: nothing to read).
    private func streamHeadIndex(_ streamId: String) throws -> [String: CachedHead].Index {
        if let index = versions.index(forKey: streamId) { return index }
        let stored =
            versionsComplete
            ? .empty
            : try db.first("SELECT version, event_id FROM streams WHERE stream_id = ?", .text(streamId)) {
                StreamHead(version: $0.int64(0), eventId: $0.text(1))
            } ?? .empty
        versions[streamId] = CachedHead(head: stored)
        return versions.index(forKey: streamId)!
    }

    func streamHead(_ streamId: String) throws -> StreamHead {
        versions.values[try streamHeadIndex(streamId)].head
    }

    /// Sets the cached head at `index` (from `streamHeadIndex`) to `head`, in place; the stream
    /// joins the list to write at its first change in the transaction.
    private func setStreamHead(at index: [String: CachedHead].Index, _ head: StreamHead) {
        let first = versions.values[index].changedIn != transactionNumber
        versions.values[index] = CachedHead(head: head, changedIn: transactionNumber)
        if first { changedVersions.append(versions.keys[index]) }
    }

    /// Writes the stream versions changed in this transaction.
    private func saveStreamVersions() throws {
        for streamId in changedVersions {
            let head = versions[streamId]?.head ?? .empty
            // Each stream once (a set): held together, they may go as one multi-row upsert.
            try db.insert(
                """
                INSERT INTO streams(stream_id, version, event_id) VALUES(?, ?, ?)
                ON CONFLICT(stream_id) DO UPDATE SET version = excluded.version, event_id = excluded.event_id
                """, .text(streamId), .integer(head.version), .text(head.eventId))
        }
        changedVersions = []
        transactionNumber += 1
    }

    /// Marks a global position handled and moves `handledThrough` over every contiguous one.
    private func markHandled(_ position: Int64) throws {
        guard position > handledThrough, !handledAbove.contains(position) else { return }
        if position == handledThrough + 1 {
            handledThrough = position
            while handledAbove.remove(handledThrough + 1) != nil { handledThrough += 1 }
        } else {
            handledAbove.insert(position)
            // Held with the others (positions arrive out of order across partitions: most are).
            try db.insert("INSERT INTO handled_positions(position) VALUES(?) ON CONFLICT DO NOTHING", .integer(position))
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
            "INSERT INTO meta(key, value) VALUES('handled_through', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            .integer(handledThrough))
        try db.run("DELETE FROM handled_positions WHERE position <= ?", .integer(handledThrough))
    }

    /// Runs `body` in a transaction with the handled watermark saved at the end; on failure the
    /// in-memory bookkeeping is read back so it matches the database again. Shared: the
    /// transaction takes its turn and reads the bookkeeping back first, and announces the
    /// watermark and the changed streams last.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        do {
            let result = try db.transaction {
                if let sharing {
                    try sharing.takeTurn(db)
                    try reload()
                }
                let before = handledThrough
                changedStreams = []
                let result = try body()
                try saveStreamVersions()
                if handledThrough != before { try saveHandled() }
                if let sharing, handledThrough != before || !changedStreams.isEmpty {
                    let streams = changedStreams.count <= 100 && changedStreams != Self.everything ? changedStreams.sorted() : nil
                    try sharing.announce(db, handledThrough: handledThrough, streams: streams)
                }
                return result
            }
            if versions.count > Self.versionCacheLimit {
                versions = [:]
                versionsComplete = false
            }
            return result
        } catch {
            try? reload()
            throw error
        }
    }
}

/// A parked record chosen for a retry or a skip: the identity it claims, which a skip checks
/// against the event store.
public struct ParkedClaim: Sendable {
    public var id: Int64
    public var streamId: String
    public var streamVersion: Int64
    public var eventId: String
    /// Parked WAITING (behind another record of its stream), not FAILED or CONFLICT.
    public var waiting: Bool = false
}

/// What the event store holds at a parked record's stream version, looked up (by the caller, over
/// the network) before a skip: a skip drops only records that are not the store's event.
public enum StoreVerdict: Sendable, Equatable {
    /// The store holds this very event (same id): it is real, and a skip leaves it parked.
    case same
    /// The store holds another event at that version: the record is not the store's. It is dropped
    /// and the store's event takes its place (parked WAITING until its turn).
    case other(ProjectedEvent)
    /// The store's stream has no event at that version: the record is dropped and the stream does
    /// not move.
    case absent
}
