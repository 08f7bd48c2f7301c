import CommitScheduling
import Foundation
import Logging
import SQLite
import Synchronization
import WallTime
import Watermarks

/// The embedded event store: one SQLite database in WAL mode with `synchronous=FULL`, so an
/// append is on disk (fsync of the WAL) before it is acknowledged.
///
/// **Group commit.** Every write goes through one writer connection, one transaction at a time,
/// run where `Options.commitScheduler` puts it (a background thread by default; `command-service
/// --commit-on` also offers the event loop whose call wrote, and, its default, that loop for a
/// transaction likely to hold one append and the thread for a group: the store tells the
/// scheduler how many its recent transactions took). Appends that arrive while a
/// transaction is committing wait, and the next transaction takes all of them (up to
/// `maxBatch`): one fsync covers many commands, so throughput grows with concurrency. Each
/// append runs inside its own SAVEPOINT, so one refused append (wrong version) does not undo its
/// neighbours. Appends in one batch see each other, so two racing on the same
/// expected version end with exactly one winner.
///
/// **Positions.** The global position is the events table's rowid. With one writer, rowids are
/// handed out in commit order, so a reader that has seen position N has seen every event below
/// N: the relay and catch-up subscriptions never skip an event that commits late.
///
/// **Reads** use a small pool of their own connections (WAL lets them run beside the writer).
/// They are short, indexed and run on the caller's thread.
public final class SQLiteEventStore: EventStore {
    public struct Options: Sendable {
        /// Most appends committed in one transaction.
        public var maxBatch = 512
        /// Reader connections kept open.
        public var readers = 4
        /// Zeros written ahead in the WAL when the store opens (0: none; see
        /// `WALCheckpointer.zeroFillWAL`).
        public var walPreallocateBytes = WALCheckpointer.defaultWALPreallocateBytes
        /// Where the writer's transactions run (see `CommitScheduler`).
        public var commitScheduler: any CommitScheduler = BackgroundCommitScheduler()
        /// How long the structural check of the database file (`PRAGMA quick_check`) may run when
        /// the store opens; nil: not at all. A file it finds damaged opens with appends refused.
        public var startupCheckBudget: Duration? = .seconds(2)
        /// The clock for `recordedAt`, ms since the epoch (UTC); injected in tests.
        public var clock: any WallClock = SystemWallClock()
        public init() {}
    }

    private enum Job {
        case append(AppendRequest, CheckedContinuation<AppendResult, any Error>)
        case write(@Sendable (SQLiteConnection) throws -> Void, CheckedContinuation<Void, any Error>)
    }

    private struct Queue {
        var commits = GroupCommitQueue<Job>()
        /// A drain is inside a transaction (only one may be).
        var running = false
        /// Which scheduled drain may run; `close()` bumps it to take over one that has not started.
        var generation = 0
        /// How many jobs the recent transactions took (a moving average): what the scheduler is
        /// told the next one will likely cover.
        var recentBatch = 1.0
    }

    public let path: String
    private let options: Options
    private let logger: Logger
    let writer: SQLiteConnection  // used by one drain at a time (tests read its pragmas while idle)
    private let queue = Mutex(Queue())
    private let readers: SQLiteReaderPool
    private let head: WatermarkWaiters
    /// Checkpoints the WAL off the commit path (the writer's own checkpoints are off), so a
    /// command never waits for pages to be copied into the database file.
    private let checkpointer: WALCheckpointer
    private let refusal = WriteRefusal()
    private let metrics = StoreMetrics(store: "sqlite")

    /// The page size of a store this creates (a file made with another keeps its own: SQLite
    /// changes it only with a VACUUM, which in WAL mode it does not do).
    ///
    /// Why 1 KiB, not SQLite's 4 KiB: a commit writes every page it touched to the WAL, each
    /// with a checksum over the whole page. A deposit touches about five pages (the events
    /// table, its two unique indexes, the commands table and its key), so at 4 KiB it wrote and
    /// checksummed about 20 KiB to store a row of a few hundred bytes: the checksums alone were a
    /// tenth of its instructions. At 1 KiB it writes about 7.5 frames, 8 KiB: 239,312 -> 228,405
    /// instructions per deposit (callgrind, `CASES=deposit Scripts/bench instructions`), while
    /// serving history (`ReadAll`) cost 20,322 -> 20,488 per event.
    static let pageSize = 1024

    /// Opens or creates the store at `path` (the directory must exist).
    public init(path: String, options: Options = Options(), logger: Logger = Logger(label: "eventstore")) throws {
        self.path = path
        self.options = options
        self.logger = logger
        readers = SQLiteReaderPool(path: path, capacity: options.readers)
        do {
            writer = try SQLiteConnection(path: path, gatheringWALWrites: true)
            try writer.execute(
                "PRAGMA page_size=\(Self.pageSize); PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
            try WALCheckpointer.disableAutomaticCheckpoints(on: writer)
            try Self.migrate(writer)
            do {
                try WALCheckpointer.zeroFillWAL(ofDatabaseAt: path, upTo: options.walPreallocateBytes)
            } catch {
                // A speed-up, not a need: a store short of disk still opens, and its commits grow
                // the WAL as they go.
                logger.warning("the WAL is not zero-filled ahead; commits will grow it", metadata: ["error": "\(error)"])
            }
            checkpointer = try WALCheckpointer(path: path, logger: logger)
            let last = try writer.first("SELECT coalesce(max(position), 0) FROM events") { $0.int64(0) } ?? 0
            head = WatermarkWaiters(highWatermark: last)
            try checkAtOpen(head: last)
        } catch let error as SQLiteError {
            throw EventStoreError.unavailable("cannot open \(path): \(error)")
        }
    }

    /// What the store can tell about itself when it opens: SQLite's structural check (within
    /// its time budget), and no checkpoint beyond the last event (a relay that published events
    /// the store no longer holds). Either failure refuses appends; both are logged.
    private func checkAtOpen(head: Int64) throws {
        if let budget = options.startupCheckBudget {
            let started = ContinuousClock.now
            switch try writer.integrityCheck(full: false, budget: budget) {
            case .ok:
                logger.debug("quick_check passed", metadata: ["elapsed": "\(ContinuousClock.now - started)"])
            case .outOfTime:
                logger.warning(
                    "the database's quick_check did not finish in its budget; check the whole store with cqrs verify",
                    metadata: ["budget": "\(budget)"])
            case .problems(let problems):
                refuseWrites(because: "\(path) fails SQLite's quick_check: \(problems.prefix(3).joined(separator: "; "))")
            }
        }
        for (name, position) in try writer.query(
            "SELECT name, position FROM checkpoints WHERE position > ?", .integer(head), row: { ($0.text(0), $0.int64(1)) })
        {
            refuseWrites(
                because:
                    "checkpoint '\(name)' is at position \(position) but the store's last event is at \(head): events that were stored (and published) are missing"
            )
        }
    }

    public var writeRefusal: String? { refusal.current }

    public func refuseWrites(because reason: String) {
        guard refusal.current == nil else { return }
        refusal.set(reason)
        logger.critical("the event store refuses appends (DATA_LOSS) until it is repaired", metadata: ["reason": "\(reason)"])
    }

    /// The schema, versioned with `user_version` so that a store made by an older build migrates
    /// forward when it opens. Each step runs in its own transaction.
    ///
    /// Version 2 dropped the `streams` table (a stream's version, kept beside its events): the
    /// `(stream_id, stream_version)` index already answers "the stream's last version" in one
    /// lookup, and keeping the copy cost every append one more B-tree page in the WAL.
    static func migrate(_ db: SQLiteConnection) throws {
        let version = try db.first("PRAGMA user_version") { $0.int64(0) } ?? 0
        if version < 1 {
            try db.execute(
                """
                BEGIN;
                CREATE TABLE events(
                    position INTEGER PRIMARY KEY,
                    event_id TEXT NOT NULL UNIQUE,
                    stream_id TEXT NOT NULL,
                    stream_version INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    schema_version INTEGER NOT NULL,
                    recorded_at INTEGER NOT NULL,
                    correlation_id TEXT,
                    causation_id TEXT,
                    data TEXT NOT NULL,
                    UNIQUE(stream_id, stream_version));
                CREATE TABLE commands(
                    command_id TEXT PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE snapshots(
                    stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE checkpoints(name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
                PRAGMA user_version = 2;
                COMMIT;
                """)
        } else if version < 2 {
            try db.execute("BEGIN; DROP TABLE IF EXISTS streams; PRAGMA user_version = 2; COMMIT;")
        }
        if version < 3 { try addChecksums(db) }
        if version < 4 {
            // Version 4 keeps a digest of each command with its result (see AppendRequest.commandDigest).
            try db.transaction { try db.execute("ALTER TABLE commands ADD COLUMN digest TEXT NOT NULL DEFAULT ''; PRAGMA user_version = 4;") }
        }
        if version < 5 {
            // Version 5 keeps the trace context each event was appended in (NewEvent.traceParent).
            try db.transaction { try db.execute("ALTER TABLE events ADD COLUMN trace_parent TEXT; PRAGMA user_version = 5;") }
        }
    }

    /// Version 3 stores a checksum with each event (`EventChecksum`), computed here for the events
    /// an older build stored, in the same transaction as the new column.
    private static func addChecksums(_ db: SQLiteConnection) throws {
        try db.transaction {
            try db.execute("ALTER TABLE events ADD COLUMN checksum INTEGER NOT NULL DEFAULT 0")
            var after: Int64 = 0
            while true {
                // The columns of version 3: trace_parent comes with version 5.
                let page = try db.query(
                    "SELECT \(eventColumnsBeforeVersion5), NULL FROM events WHERE position > ? ORDER BY position LIMIT 1000", .integer(after),
                    row: uncheckedEvent)
                guard let last = page.last else { break }
                for event in page {
                    try db.run("UPDATE events SET checksum = ? WHERE position = ?", .integer(EventChecksum.of(event)), .integer(event.position))
                }
                after = last.position
            }
            try db.execute("PRAGMA user_version = 3")
        }
    }

    /// Finishes the queued writes, then refuses new ones.
    ///
    /// A drain scheduled on an event loop may be queued behind this very call on the same loop,
    /// so close does not wait for it: it takes the drain over (the scheduled one then finds
    /// itself superseded) and commits what is queued here. It waits only for a drain already
    /// inside a transaction, which ends without help.
    public func close() {
        while true {
            let owned = queue.withLock { queue -> Bool in
                queue.commits.close()
                guard !queue.running else { return false }
                queue.generation += 1
                queue.commits.markDraining(true)
                queue.running = true
                return true
            }
            if owned { break }
            usleep(200)
        }
        while case let jobs = nextBatch(), !jobs.isEmpty { commit(jobs) }
        queue.withLock { queue in
            queue.running = false
            queue.commits.markDraining(false)
        }
        checkpointer.stop()
    }

    // MARK: Writes

    public func append(_ request: AppendRequest) async throws -> AppendResult {
        try AppendRules.validate(request)
        try refusal.check()
        let start = ContinuousClock.now
        defer { metrics.appendFinished(startedAt: start) }
        return try await withCheckedThrowingContinuation { continuation in
            enqueue(.append(request, continuation))
        }
    }

    public func saveSnapshot(_ snapshot: Snapshot) async throws {
        try await write { db in
            try db.run(
                """
                INSERT INTO snapshots(stream_id, version, type, data) VALUES(?, ?, ?, ?)
                ON CONFLICT(stream_id) DO UPDATE SET version = excluded.version, type = excluded.type, data = excluded.data
                WHERE excluded.version > snapshots.version
                """,
                .text(snapshot.streamId), .integer(snapshot.version), .text(snapshot.type), .text(String(decoding: snapshot.data, as: UTF8.self)))
        }
    }

    public func saveCheckpoint(_ name: String, position: Int64) async throws {
        try await write { db in
            try db.run(
                "INSERT INTO checkpoints(name, position) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                .text(name), .integer(position))
        }
    }

    private func write(_ body: @escaping @Sendable (SQLiteConnection) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.write(body, continuation))
        }
    }

    private func enqueue(_ job: Job) {
        switch queue.withLock({ $0.commits.enqueue(job) }) {
        case .closed: Self.fail(job, with: EventStoreError.unavailable("the store is closed"))
        case .startDrain: scheduleDrain()
        case .joined: break
        }
    }

    private func scheduleDrain() {
        // A lone write now, after rounds that took several, still comes from a busy store: the
        // average says so, where the queue alone would not.
        let (generation, likely) = queue.withLock { ($0.generation, max($0.commits.jobs.count, Int($0.recentBatch.rounded()))) }
        options.commitScheduler.schedule(covering: likely) { self.drainRound(generation) }
    }

    /// Commits one batch of the queued jobs in one transaction, then asks the scheduler for
    /// another round if jobs arrived meanwhile. One round, not a loop: a scheduler on an event
    /// loop sends the replies this round released before it blocks in the next.
    private func drainRound(_ generation: Int) {
        let owned = queue.withLock { queue -> Bool in
            guard queue.generation == generation, !queue.running else { return false }
            queue.running = true
            return true
        }
        guard owned else { return }  // superseded by close()
        let jobs = nextBatch()
        if !jobs.isEmpty { commit(jobs) }
        checkpointer.catchUp(on: writer)
        let more = queue.withLock { queue -> Bool in
            queue.running = false
            return queue.commits.roundFinished()
        }
        if more { scheduleDrain() }
    }

    /// Writes queued and not yet taken by a transaction.
    var queuedForTesting: Int { queue.withLock { $0.commits.jobs.count } }

    /// Takes up to `maxBatch` queued jobs.
    private func nextBatch() -> [Job] {
        let batch = queue.withLock { queue -> [Job] in
            let batch = queue.commits.take(upTo: options.maxBatch)
            if !batch.isEmpty { queue.recentBatch = queue.recentBatch * 0.75 + Double(batch.count) * 0.25 }
            return batch
        }
        if !batch.isEmpty { metrics.commitBatchSize.record(batch.count) }
        return batch
    }

    private func commit(_ jobs: [Job]) {
        var outcomes: [Result<AppendResult?, any Error>] = []
        outcomes.reserveCapacity(jobs.count)
        // Positions are given explicitly (the checksum covers them); with one writer, the next
        // is the head's successor, and a refused append gives back what it took.
        var nextPosition = head.current + 1
        // A job's writes are undone alone when it is refused: inside a savepoint of its own when
        // the transaction holds several; a lone job's is the transaction itself (two statements
        // fewer for every commit of one client's command).
        let savepoints = jobs.count > 1
        let undoJob = {
            if savepoints {
                try self.writer.run("ROLLBACK TO job")
            } else {
                try self.writer.run("ROLLBACK")
                try self.writer.run("BEGIN IMMEDIATE")
            }
        }
        do {
            try writer.run("BEGIN IMMEDIATE")
            for job in jobs {
                if savepoints { try writer.run("SAVEPOINT job") }
                let positionBefore = nextPosition
                do {
                    switch job {
                    case .append(let request, _):
                        do {
                            outcomes.append(.success(try applyAppend(request, nextPosition: &nextPosition, checkingEventIds: false)))
                        } catch is EventIdTaken {
                            // Rare: an id already stored. Undone, and decided again by looking the ids up.
                            nextPosition = positionBefore
                            try undoJob()
                            outcomes.append(.success(try applyAppend(request, nextPosition: &nextPosition, checkingEventIds: true)))
                        }
                    case .write(let body, _):
                        try body(writer)
                        outcomes.append(.success(nil))
                    }
                    if savepoints { try writer.run("RELEASE job") }
                } catch let error as EventStoreError {
                    nextPosition = positionBefore
                    try undoJob()
                    if savepoints { try writer.run("RELEASE job") }
                    outcomes.append(.failure(error))
                }
            }
            try writer.run("COMMIT")
        } catch {
            try? writer.execute("ROLLBACK")
            logger.error("event store transaction failed", metadata: ["error": "\(error)", "appends": "\(jobs.count)"])
            let failure = EventStoreError.unavailable("\(error)")
            for job in jobs { Self.fail(job, with: failure) }
            return
        }
        // The head moves before anyone hears of the commit, so a writer that reads the head next
        // sees at least its own events.
        let last = outcomes.compactMap { try? $0.get()?.position }.max() ?? 0
        if last > 0 { head.advance(to: last) }
        for (job, outcome) in zip(jobs, outcomes) {
            switch (job, outcome) {
            case (.append(_, let continuation), .success(let result?)):
                continuation.resume(returning: result)
            case (.write(_, let continuation), .success):
                continuation.resume()
            case (_, .failure(let error)):
                Self.fail(job, with: error)
            case (.append(_, let continuation), .success(nil)):
                continuation.resume(throwing: EventStoreError.unavailable("an append produced no result"))
            }
        }
    }

    private static func fail(_ job: Job, with error: any Error) {
        switch job {
        case .append(_, let continuation): continuation.resume(throwing: error)
        case .write(_, let continuation): continuation.resume(throwing: error)
        }
    }

    /// An event id of the append was found stored by the unique index, not looked up first.
    private struct EventIdTaken: Error {}

    /// One append inside the open transaction (writer queue only). Throws `EventStoreError` for a
    /// refusal (the job's writes are undone) and anything else for a failure of the database.
    ///
    /// The append's event ids are new in all but a retry, so they are not looked up first
    /// (`checkingEventIds` false): the events table's unique index finds a stored one, and the
    /// insert throws `EventIdTaken` for the caller to undo the job's writes and decide again with
    /// the lookups. A refused expected version looks them up too, before refusing: a retry of an
    /// append already stored answers with its first result, whatever the stream's version now.
    private func applyAppend(_ request: AppendRequest, nextPosition: inout Int64, checkingEventIds: Bool) throws -> AppendResult {
        if let commandId = request.commandId, let earlier = try Self.commandResult(commandId, in: writer) {
            return try AppendRules.repeated(request, earlier: earlier)
        }
        let storedAppend = {
            try AppendRules.duplicate(of: request, stored: try request.events.map { try Self.event(withId: $0.eventId, in: self.writer) })
        }
        if checkingEventIds, let earlier = try storedAppend() { return earlier }
        let version = try Self.streamVersion(request.streamId, in: writer)
        guard request.expected.accepts(version) else {
            if !checkingEventIds, let earlier = try storedAppend() { return earlier }
            throw EventStoreError.wrongExpectedVersion(streamId: request.streamId, expected: request.expected, actual: version)
        }
        let recordedAt = options.clock.nowMilliseconds()
        var next = version
        var position: Int64 = 0
        for event in request.events {
            next += 1
            position = nextPosition
            nextPosition += 1
            let stored = RecordedEvent(
                eventId: event.eventId, streamId: request.streamId, type: event.type, schemaVersion: event.schemaVersion, streamVersion: next,
                position: position, recordedAt: recordedAt, correlationId: event.correlationId, causationId: event.causationId,
                data: event.data, traceParent: event.traceParent)
            do {
                try writer.run(
                    """
                    INSERT INTO events(position, event_id, stream_id, stream_version, type, schema_version, recorded_at, correlation_id,
                        causation_id, data, trace_parent, checksum)
                    VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    .integer(position), .text(event.eventId), .text(request.streamId), .integer(next), .text(event.type),
                    .integer(Int64(event.schemaVersion)), .integer(recordedAt), event.correlationId.map(SQLiteValue.text) ?? .null,
                    event.causationId.map(SQLiteValue.text) ?? .null, .text(String(decoding: event.data, as: UTF8.self)),
                    event.traceParent.map(SQLiteValue.text) ?? .null, .integer(EventChecksum.of(stored)))
            } catch let error as SQLiteError where error.isConstraint && error.message.contains("events.event_id") {
                // Looked up already, and stored since within this transaction: not possible with one
                // writer, but never decided twice.
                if checkingEventIds { throw EventStoreError.eventIdConflict(eventId: event.eventId, reason: "already stored") }
                throw EventIdTaken()
            }
        }
        if let commandId = request.commandId {
            try writer.run(
                "INSERT INTO commands(command_id, stream_id, version, position, digest) VALUES(?, ?, ?, ?, ?)",
                .text(commandId), .text(request.streamId), .integer(next), .integer(position), .text(request.commandDigest ?? ""))
        }
        return AppendResult(streamId: request.streamId, version: next, position: position)
    }

    // MARK: Reads

    static let eventColumnsBeforeVersion5 =
        "event_id, stream_id, type, schema_version, stream_version, position, recorded_at, correlation_id, causation_id, data"
    static let eventColumns = eventColumnsBeforeVersion5 + ", trace_parent"
    static let checkedEventColumns = eventColumns + ", checksum"

    static func uncheckedEvent(_ row: SQLiteStatement) -> RecordedEvent {
        RecordedEvent(
            eventId: row.text(0), streamId: row.text(1), type: row.text(2), schemaVersion: Int(row.int64(3)), streamVersion: row.int64(4),
            position: row.int64(5), recordedAt: row.int64(6), correlationId: row.optionalText(7), causationId: row.optionalText(8),
            data: row.bytes(9), traceParent: row.optionalText(10))
    }

    /// An event read with `checkedEventColumns`, its checksum verified: a damaged row is never
    /// served (DATA_LOSS naming it).
    static func recordedEvent(_ row: SQLiteStatement) throws -> RecordedEvent {
        let event = uncheckedEvent(row)
        let stored = row.int64(11)
        guard EventChecksum.of(event) == stored else { throw EventChecksum.damaged(event, stored: stored) }
        return event
    }

    static func event(withId eventId: String, in db: SQLiteConnection) throws -> RecordedEvent? {
        try db.first("SELECT \(checkedEventColumns) FROM events WHERE event_id = ?", .text(eventId), row: recordedEvent)
    }

    /// The stream's last version (0 for a stream with no events): one descent of the
    /// `(stream_id, stream_version)` index to its last entry for the stream.
    static let streamVersionQuery = "SELECT stream_version FROM events WHERE stream_id = ? ORDER BY stream_version DESC LIMIT 1"

    static func streamVersion(_ streamId: String, in db: SQLiteConnection) throws -> Int64 {
        try db.first(streamVersionQuery, .text(streamId)) { $0.int64(0) } ?? 0
    }

    static func commandResult(_ commandId: String, in db: SQLiteConnection) throws -> AppendResult? {
        try db.first("SELECT stream_id, version, position, digest FROM commands WHERE command_id = ?", .text(commandId)) {
            AppendResult(streamId: $0.text(0), version: $0.int64(1), position: $0.int64(2), commandDigest: $0.text(3))
        }
    }

    /// Runs a read on a pooled reader connection.
    func read<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        do {
            return try readers.read(body)
        } catch let error as SQLiteError {
            throw EventStoreError.unavailable("\(error)")
        }
    }

    public func readStream(_ streamId: String, fromVersion: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try AppendRules.checkPage(maxCount)
        return try read { db in
            try db.query(
                "SELECT \(Self.checkedEventColumns) FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?",
                .text(streamId), .integer(fromVersion), .integer(Int64(maxCount)), row: Self.recordedEvent)
        }
    }

    public func readAll(fromPosition: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try AppendRules.checkPage(maxCount)
        return try read { db in
            try db.query(
                "SELECT \(Self.checkedEventColumns) FROM events WHERE position >= ? ORDER BY position LIMIT ?",
                .integer(fromPosition), .integer(Int64(maxCount)), row: Self.recordedEvent)
        }
    }

    public func headPosition() async throws -> Int64 { head.current }

    public func streamVersion(_ streamId: String) async throws -> Int64 {
        try read { try Self.streamVersion(streamId, in: $0) }
    }

    public func waitForEvents(after position: Int64, timeout: Duration) async -> Bool {
        await head.wait(untilAbove: position, timeout: timeout)
    }

    public func commandResult(_ commandId: String) async throws -> AppendResult? {
        try read { try Self.commandResult(commandId, in: $0) }
    }

    public func loadSnapshot(_ streamId: String) async throws -> Snapshot? {
        try read { db in
            try db.first("SELECT version, type, data FROM snapshots WHERE stream_id = ?", .text(streamId)) {
                Snapshot(streamId: streamId, version: $0.int64(0), type: $0.text(1), data: $0.bytes(2))
            }
        }
    }

    public func checkpoint(_ name: String) async throws -> Int64? {
        try read { db in try db.first("SELECT position FROM checkpoints WHERE name = ?", .text(name)) { $0.int64(0) } }
    }
}
