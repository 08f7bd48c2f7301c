import EventStore
import Logging
import NIOCore
import NIOPosix
import PostgresConnections
import PostgresNIO
import RPCTransportNIO
import Synchronization
import WallTime
import Watermarks

/// The event store on PostgreSQL, for when one machine is not enough: several command-service
/// replicas share one database, and the rules hold across them.
///
/// **One writer at a time, across replicas.** Every appending transaction first locks the one
/// row of `head` (`SELECT … FOR UPDATE`), which holds the last position handed out. So
/// transactions that append take turns across every process: positions are gap-free, handed out
/// in commit order, and checks made after the lock (command ids, event ids, the stream's version)
/// see every append committed before, so two racers on one expected version end with exactly one
/// winner even in two processes. A follower of `$all` never falls into a hole: an event becomes
/// visible only after every lower position committed (the lock is released by the commit that
/// made them visible). This is what the SQLite store gets from its single writer; the price is
/// that appends from all replicas queue on one row, which group commit (below) pays back.
///
/// **Group commit.** Within a process, appends that arrive while a transaction runs wait, and the
/// next transaction takes all of them (up to `maxBatch`): one commit, one WAL flush, for many
/// commands. A refused append (wrong version, reused command id) writes nothing and does not
/// disturb its neighbours: every check is made before the append's first write.
///
/// **Following.** Appends made here wake local waiters at once; appends made by other replicas
/// are seen by polling the head every `pollInterval` while someone waits (as Eventuous's and
/// Marten's PostgreSQL subscriptions poll).
///
/// Every row carries the checksum the SQLite store keeps (`EventChecksum`), checked on every read.
public final class PostgresEventStore: EventStore {
    public struct Options: Sendable {
        /// Most appends committed in one transaction.
        public var maxBatch = 512
        /// The PostgreSQL schema that holds the store's tables (created when missing): one
        /// database can hold several stores.
        public var schema = "public"
        /// How often a waiter for new events asks the database for appends made elsewhere.
        public var pollInterval: Duration = .milliseconds(50)
        /// Longest wait for a pooled connection. The pool waits for the database to come back
        /// without limit; past this a command fails at once as unavailable instead of running
        /// into its deadline.
        public var connectionWait: Duration = .seconds(2)
        /// The wait once one timed out and no connection came since: while the database is down,
        /// commands fail fast rather than each waiting the full `connectionWait`.
        public var connectionWaitWhileDown: Duration = .milliseconds(200)
        /// The longest a transaction's statements run (the URL's `statement_timeout`, which
        /// the connections also start with); a batch whose callers all have deadlines is bounded
        /// by the latest of them.
        public var statementTimeout: Duration = .seconds(30)
        /// How long the writer keeps its pooled connection with nothing to write before it hands
        /// it back (see `drain`); zero hands it back after every batch (the default of a pool of
        /// one connection, so reads never wait for the writer).
        public var writerIdleRelease: Duration = .seconds(1)
        /// The writer writes on a connection of its own on its callers' event loop
        /// (`WriterClients`), beside the pool, instead of a pooled one on any loop. Only for a
        /// store that makes its own pool (`connect`) of more than one connection.
        public var writerConnectionPerLoop = true
        /// The clock for `recordedAt`, ms since the epoch (UTC); injected in tests.
        public var clock: any WallClock = SystemWallClock()
        public init() {}
    }

    enum Job {
        /// An append, with the deadline of the call that asked for it (nil: none).
        case append(AppendRequest, CheckedContinuation<AppendResult, any Error>, deadline: ContinuousClock.Instant?)
        case write(@Sendable (PostgresConnection, Logger) async throws -> Void, CheckedContinuation<Void, any Error>)

        func fail(_ error: any Error) {
            switch self {
            case .append(_, let continuation, _): continuation.resume(throwing: error)
            case .write(_, let continuation): continuation.resume(throwing: error)
            }
        }
    }

    /// How long a batch's statements may run: until the latest deadline of its appends (no caller
    /// waits after that, so the transaction gives up instead of holding the head lock), never
    /// longer than the connection's `statement_timeout`; nil when some job has no deadline.
    static func statementBudget(_ deadlines: [ContinuousClock.Instant?], now: ContinuousClock.Instant, ceiling: Duration) -> Duration? {
        var latest: ContinuousClock.Instant?
        for deadline in deadlines {
            guard let deadline else { return nil }
            latest = max(latest ?? deadline, deadline)
        }
        guard let latest else { return nil }
        return min(max(latest - now, .milliseconds(1)), ceiling)
    }

    let client: PostgresClient
    /// The client's `run()`, when this store made the client and so owns its life.
    private let clientTask: Task<Void, Never>?
    /// The writer's connections on each event loop (nil: it leases from `client`).
    private let writerClients: WriterClients?
    let options: Options
    private let logger: Logger
    let tables: Tables
    private let queue = Mutex(WriterQueue())
    private let head: WatermarkWaiters
    private let refusal = WriteRefusal()
    private let metrics = StoreMetrics(store: "postgres")
    /// Stream versions exact at a head, from this store's own reads and writes.
    private let known = Mutex(KnownStreams())
    /// The event loop of the writer's connection, since it leased its last (for tests).
    let writerLoop = Mutex<ObjectIdentifier?>(nil)
    /// The writer waits on its connection for the next job (for tests).
    var writerIsParked: Bool { queue.withLock { $0.isParked } }
    /// A wait for a connection timed out and none came since (see `withConnection`).
    let databaseDown = Mutex(false)
    /// Where the store's URL is shown (logs, errors): without its password.
    public let displayName: String

    /// Opens the store on a client someone else runs (tests share one across many stores).
    public static func open(
        client: PostgresClient, displayName: String = "postgres", options: Options = Options(),
        logger: Logger = Logger(label: "eventstore")
    ) async throws -> PostgresEventStore {
        try await open(client: client, clientTask: nil, writerClients: nil, displayName: displayName, options: options, logger: logger)
    }

    /// Connects to `url` (`postgres://user:password@host:port/database`), creates or migrates the
    /// schema, and opens the store; the store runs the connection pool until `close()`.
    public static func connect(
        url: String, options: Options = Options(), logger: Logger = Logger(label: "eventstore")
    ) async throws -> PostgresEventStore {
        let location: PostgresLocation
        do {
            location = try PostgresLocation(url: url)
            try await location.probe(logger: logger)
        } catch PostgresConnectionError.invalid(let message) {
            throw EventStoreError.invalid(message)
        } catch PostgresConnectionError.unavailable(let message) {
            throw EventStoreError.unavailable(message)
        }
        var options = options
        if let schema = location.schema { options.schema = schema }
        options.statementTimeout = location.statementTimeout
        // One connection in all: the writer must not keep it from the reads between batches.
        if location.poolSize == 1 { options.writerIdleRelease = .zero }
        let client = PostgresClient(configuration: location.configuration, backgroundLogger: logger)
        // Immediate: the pool must be running before the first lease, or it warns. On the event
        // loops: the pool arms an idle and a keep-alive timer on every release of a connection
        // and disarms them on the next lease; run there, its task group's sleeps are the loops'
        // timers, not Dispatch's (two thread wake-ups each: `EventLoopTasks`).
        let task = Task.immediate(executorPreference: EventLoopTasks.anyLoop()) { await client.run() }
        let writerClients =
            options.writerConnectionPerLoop && location.poolSize != 1
            ? WriterClients(configuration: location.configuration, logger: logger) : nil
        do {
            return try await open(
                client: client, clientTask: task, writerClients: writerClients, displayName: location.redacted, options: options,
                logger: logger)
        } catch {
            task.cancel()
            writerClients?.shutDown()
            throw error
        }
    }

    private static func open(
        client: PostgresClient, clientTask: Task<Void, Never>?, writerClients: WriterClients?, displayName: String, options: Options,
        logger: Logger
    ) async throws -> PostgresEventStore {
        let tables = try Tables(schema: options.schema)
        do {
            try await PostgresEventStoreSchema.migrate(client: client, tables: tables, logger: logger)
            let last =
                try await client.query(PostgresQuery(unsafeSQL: "SELECT position FROM \(tables.head)"), logger: logger)
                .collect().first?.decode(Int64.self) ?? 0
            let store = PostgresEventStore(
                client: client, clientTask: clientTask, writerClients: writerClients, displayName: displayName, options: options,
                logger: logger, tables: tables, head: last)
            try await store.checkAtOpen(head: last)
            return store
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError.unavailable("cannot open the event store at \(displayName): \(PostgresErrors.describe(error))")
        }
    }

    private init(
        client: PostgresClient, clientTask: Task<Void, Never>?, writerClients: WriterClients?, displayName: String, options: Options,
        logger: Logger, tables: Tables, head: Int64
    ) {
        self.client = client
        self.clientTask = clientTask
        self.writerClients = writerClients
        self.displayName = displayName
        self.options = options
        self.logger = logger
        self.tables = tables
        self.head = WatermarkWaiters(highWatermark: head)
    }

    deinit {
        clientTask?.cancel()
        writerClients?.shutDown()
    }

    /// A checkpoint beyond the last event means events that were stored (and published) are
    /// missing: appends are refused, as the SQLite store does.
    private func checkAtOpen(head: Int64) async throws {
        let rows = try await client.query(
            PostgresQuery(unsafeSQL: "SELECT name, position FROM \(tables.checkpoints) WHERE position > $1", binds: Self.binds(head)),
            logger: logger)
        for try await (name, position) in rows.decode((String, Int64).self) {
            refuseWrites(
                because:
                    "checkpoint '\(name)' is at position \(position) but the store's last event is at \(head): events that were stored (and published) are missing"
            )
        }
    }

    /// Finishes nothing more: queued appends fail as unavailable, and a pool this store runs stops.
    public func close() {
        let (jobs, parked) = queue.withLock { state -> ([Job], WriterQueue.Writer?) in
            state.jobs.close()
            return (state.jobs.draining ? [] : state.jobs.take(upTo: .max), state.unpark())
        }
        parked?.resume(returning: false)
        for job in jobs { job.fail(EventStoreError.unavailable("the store is closed")) }
        clientTask?.cancel()
        writerClients?.shutDown()
    }

    public var writeRefusal: String? { refusal.current }

    public func refuseWrites(because reason: String) {
        guard refusal.current == nil else { return }
        refusal.set(reason)
        logger.critical("the event store refuses appends (DATA_LOSS) until it is repaired", metadata: ["reason": "\(reason)"])
    }

    // MARK: Writes

    public func append(_ request: AppendRequest) async throws -> AppendResult {
        try AppendRules.validate(request)
        try refusal.check()
        let start = ContinuousClock.now
        defer { metrics.appendFinished(startedAt: start) }
        return try await withCheckedThrowingContinuation { continuation in
            enqueue(.append(request, continuation, deadline: CallDeadline.current))
        }
    }

    public func saveSnapshot(_ snapshot: Snapshot) async throws {
        let sql = """
            INSERT INTO \(tables.snapshots)(stream_id, version, type, data) VALUES($1, $2, $3, $4)
            ON CONFLICT(stream_id) DO UPDATE SET version = excluded.version, type = excluded.type, data = excluded.data
            WHERE excluded.version > \(tables.snapshots).version
            """
        try await write { connection, logger in
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: sql,
                    binds: Self.binds(snapshot.streamId, snapshot.version, snapshot.type, ByteBuffer(bytes: snapshot.data))),
                logger: logger)
        }
    }

    public func saveCheckpoint(_ name: String, position: Int64) async throws {
        let sql = """
            INSERT INTO \(tables.checkpoints)(name, position) VALUES($1, $2)
            ON CONFLICT(name) DO UPDATE SET position = excluded.position
            """
        try await write { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: sql, binds: Self.binds(name, position)), logger: logger)
        }
    }

    private func write(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Void) async throws {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.write(body, continuation))
        }
    }

    private func enqueue(_ job: Job) {
        // The caller's event loop, where its reply goes: the writer's connection should be there
        // (`WriterClients`).
        let callerLoop = writerClients == nil ? nil : MultiThreadedEventLoopGroup.currentEventLoop
        let (admission, parked) = queue.withLock { state in
            let admission = state.jobs.enqueue(job)
            return (admission, admission == .joined ? state.unpark(by: callerLoop) : nil)
        }
        switch admission {
        case .closed: job.fail(EventStoreError.unavailable("the store is closed"))
        case .startDrain: Task { await self.drain(from: callerLoop) }
        case .joined: parked?.resume(returning: true)
        }
    }

    /// Commits the queued jobs, a batch per transaction, until none are left and the writer's
    /// connection has been idle for `writerIdleRelease`.
    ///
    /// Why the connection is kept between batches: leasing one from the pool for each batch (a
    /// task, the lease's wait and timers, the pool's idle and keep-alive timers re-armed on every
    /// release) cost about as many instructions as the rest of a lone command's work in this
    /// process. A lone client's next command now finds the writer waiting on its connection.
    private func drain(from callerLoop: (any EventLoop)?) async {
        // On the loop of the caller that queued the first job, until callers elsewhere move it.
        var loop = callerLoop
        repeat {
            do {
                let client = writerClients?.client(for: loop) ?? client
                if let move = try await withConnection(from: client, { connection in await self.writeBatches(on: connection) }) {
                    loop = move
                }
            } catch {
                // No connection within the wait: the next batch fails, as its transaction would.
                let jobs = queue.withLock { $0.jobs.take(upTo: options.maxBatch) }
                fail(jobs, error)
            }
        } while queue.withLock({ $0.jobs.roundFinished() })
    }

    /// Writes batches on `connection` while jobs come (as many as `BatchSizing` says), waiting up
    /// to `writerIdleRelease` for the next; returns (handing the connection back) when that wait
    /// ends with none, a batch fails, the connection is lost, the store closes, or the writer
    /// moves to its callers' loop (`WriterLoopAffinity`): then it returns that loop, for `drain`
    /// to lease there.
    private func writeBatches(on connection: PostgresConnection) async -> (any EventLoop)? {
        writerLoop.withLock { $0 = ObjectIdentifier(connection.eventLoop) }
        var affinity = WriterLoopAffinity()
        var sizing = BatchSizing(maxBatch: options.maxBatch)
        var waited: Duration?
        while true {
            let jobs = queue.withLock { $0.jobs.take(upTo: sizing.take(queued: $0.jobs.jobs.count, waited: waited)) }
            if !jobs.isEmpty {
                metrics.commitBatchSize.record(jobs.count)
                let start = ContinuousClock.now
                guard let heads = await commit(jobs, on: connection) else { return nil }
                sizing.committed(in: .now - start, from: heads.base, to: heads.head)
            }
            let waitStart = ContinuousClock.now
            let next = await nextJobs(on: connection)
            waited = next == .woken ? .now - waitStart : nil
            guard next != .none, !connection.isClosed else { return nil }
            if next == .woken, let waker = queue.withLock({ $0.waker }), affinity.woke(onConnectionLoop: waker === connection.eventLoop) {
                return waker
            }
        }
    }

    enum NextJobs {
        /// Jobs were queued before the writer could wait.
        case queued
        /// The writer waited, and the caller that queued a job woke it.
        case woken
        /// None came within `writerIdleRelease`, or the store closed.
        case none
    }

    /// Waits until a job is queued or `writerIdleRelease` passes, or the store closes.
    private func nextJobs(on connection: PostgresConnection) async -> NextJobs {
        guard options.writerIdleRelease > .zero else { return queue.withLock { $0.jobs.jobs.isEmpty ? .none : .queued } }
        var waited = false
        let woken = await withCheckedContinuation { (writer: WriterQueue.Writer) in
            let now = ContinuousClock.now
            let (early, armTimer) = queue.withLock { state -> (Bool?, Bool) in
                guard !state.jobs.closed else { return (false, false) }
                guard state.jobs.jobs.isEmpty else { return (true, false) }
                return (nil, state.park(writer, at: now))
            }
            if let early {
                writer.resume(returning: early)
            } else {
                waited = true
                if armTimer { armIdleTimer(on: connection.eventLoop, after: options.writerIdleRelease) }
            }
        }
        return woken ? (waited ? .woken : .queued) : .none
    }

    private func armIdleTimer(on loop: any EventLoop, after delay: Duration) {
        loop.scheduleTask(in: .nanoseconds(Int64(delay.wholeNanoseconds))) {
            switch self.queue.withLock({ $0.idleTimerFired(at: .now, release: self.options.writerIdleRelease) }) {
            case .release(let writer): writer.resume(returning: false)
            case .checkAgain(let rest): self.armIdleTimer(on: loop, after: rest)
            case .stop: break
            }
        }
    }

    private func fail(_ jobs: [Job], _ error: any Error) {
        guard !jobs.isEmpty else { return }
        // The batch may have been committed before the failure: learn the head again.
        known.withLock { $0.forget() }
        let failure = (error as? EventStoreError) ?? EventStoreError.unavailable(PostgresErrors.describe(error))
        logger.error("an event store transaction failed; its appends were not stored", metadata: ["error": "\(failure)"])
        for job in jobs { job.fail(failure) }
    }

    /// How many times a batch is planned from memory while other replicas keep moving the head,
    /// before it goes the reading way.
    static let fromMemoryAttempts = 3

    enum Outcome {
        case appended(AppendResult)
        case refused(any Error)
        case written
    }

    /// One batch: every job decided and written (a refused append writes nothing), the head
    /// moved, committed; then every job answered. A database error fails the whole batch as
    /// unavailable: nothing of it was committed. Returns the head the batch found and the one it
    /// left, or nil when it failed: the caller hands the connection back.
    private func commit(_ jobs: [Job], on connection: PostgresConnection) async -> (base: Int64, head: Int64)? {
        let recordedAt = options.clock.nowMilliseconds()
        let deadlines = jobs.map { job -> ContinuousClock.Instant? in
            if case .append(_, _, let deadline) = job { return deadline }
            return nil  // a snapshot or checkpoint: no caller's deadline
        }
        let budget = Self.statementBudget(deadlines, now: .now, ceiling: options.statementTimeout)
        do {
            let (outcomes, base, position) = try await write(jobs, recordedAt: recordedAt, budget: budget, on: connection)
            head.advance(to: position)
            for (job, outcome) in zip(jobs, outcomes) {
                switch (job, outcome) {
                case (.append(_, let continuation, _), .appended(let appended)): continuation.resume(returning: appended)
                case (.append(_, let continuation, _), .refused(let error)): continuation.resume(throwing: error)
                case (.write(_, let continuation), _): continuation.resume()
                case (.append(_, let continuation, _), .written): continuation.resume(throwing: EventStoreError.unavailable("lost outcome"))
                }
            }
            return (base, position)
        } catch {
            fail(jobs, error)
            return nil
        }
    }

    /// Writes one batch and commits it, returning each job's outcome, the head it found (its
    /// `base`) and the new head.
    ///
    /// Snapshots and checkpoints go first, each a statement of its own: an upsert that needs
    /// neither the head nor a place among the appends (a snapshot keeps the later version; a
    /// checkpoint has one writer, the relay holding the lease). Then the appends
    /// (`writeAppends`). Why apart: in the appends' transaction one snapshot sent its whole
    /// batch the locked way (four round trips holding the head lock), and a snapshot falls due
    /// every 100 events of a stream. A failure fails the whole batch, as one transaction's would;
    /// an upsert that went through before it is then answered with the error, and its retry
    /// writes the same row.
    private func write(
        _ jobs: [Job], recordedAt: Int64, budget: Duration?, on connection: PostgresConnection
    ) async throws -> (outcomes: [Outcome], base: Int64, head: Int64) {
        let isAppend = { (job: Job) in if case .append = job { true } else { false } }
        guard !jobs.allSatisfy(isAppend) else { return try await writeAppends(jobs, recordedAt: recordedAt, budget: budget, on: connection) }
        for case .write(let body, _) in jobs { try await body(connection, logger) }
        let appends = jobs.filter(isAppend)
        guard !appends.isEmpty else {
            let at = head.current
            return (jobs.map { _ in .written }, at, at)
        }
        let (appended, base, head) = try await writeAppends(appends, recordedAt: recordedAt, budget: budget, on: connection)
        var answers = appended.makeIterator()
        return (jobs.map { isAppend($0) ? answers.next() ?? .written : .written }, base, head)
    }

    /// Writes a batch of appends and commits it (see `write`): first from memory or
    /// optimistically (`commitFromMemory`, `commitOptimistically`: no explicit transaction); when
    /// another replica keeps appending in between, as one transaction that locks the head first.
    private func writeAppends(
        _ jobs: [Job], recordedAt: Int64, budget: Duration?, on connection: PostgresConnection
    ) async throws -> (outcomes: [Outcome], base: Int64, head: Int64) {
        let logger = self.logger
        let tables = self.tables
        let touched = Touched(jobs)
        let learn = { @Sendable (base: Int64, plan: AppendBatchPlan) in
            let versions = touched.streamIds.map { ($0, plan.version(of: $0)) }
            self.known.withLock { $0.learned(at: base, versions, head: plan.head) }
        }
        do {
            var attempts = 0
            fromMemory: while let plan = self.known.withLock({ $0.plan(for: touched.streamIds) }) {
                attempts += 1
                switch try await Self.commitFromMemory(
                    jobs, plan, recordedAt: recordedAt, lockWait: budget, on: connection, tables: tables, logger: logger)
                {
                case .committed(let outcomes, let plan, let base):
                    learn(base, plan)
                    return (outcomes, base, plan.head)
                case .headMoved(let head) where attempts < Self.fromMemoryAttempts:
                    // Planned again at the head another replica left (see `KnownStreams.moved(to:)`).
                    self.known.withLock { $0.moved(to: head) }
                case .headMoved:
                    self.known.withLock { $0.forget() }
                    break fromMemory
                case .undecided: break fromMemory
                }
            }
            if let (outcomes, plan, base) = try await Self.commitOptimistically(
                jobs, touched, recordedAt: recordedAt, lockWait: budget, on: connection, tables: tables, logger: logger)
            {
                learn(base, plan)
                return (outcomes, base, plan.head)
            }
        }
        try await connection.query("BEGIN", logger: logger)
        do {
            // Before the lock: waiting for it is what a stuck holder makes long.
            if let budget {
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT set_config('statement_timeout', $1, true)",
                        binds: Self.binds(String(budget.wholeMilliseconds))), logger: logger)
            }
            var plan = try await Self.read(touched, locking: true, on: connection, tables: tables, logger: logger)
            let base = plan.head
            var outcomes: [Outcome] = []
            outcomes.reserveCapacity(jobs.count)
            for case .append(let request, _, _) in jobs { outcomes.append(Self.decide(request, in: &plan, recordedAt: recordedAt)) }
            _ = try await Self.insert(plan, on: connection, tables: tables)
            try await connection.query("COMMIT", logger: logger)
            learn(base, plan)
            return (outcomes, base, plan.head)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    // MARK: Reads

    private static let eventColumns =
        "event_id, stream_id, type, schema_version, stream_version, position, recorded_at, correlation_id, causation_id, data, checksum, trace_parent"

    /// Events matching `condition`, each checked against its checksum: a damaged row is never served.
    private static func events(
        where condition: String, _ binds: PostgresBindings, on connection: PostgresConnection, tables: Tables, logger: Logger
    ) async throws -> [RecordedEvent] {
        try await rows(where: condition, binds, on: connection, tables: tables, logger: logger).map { event, checksum in
            guard EventChecksum.of(event) == checksum else { throw EventChecksum.damaged(event, stored: checksum) }
            return event
        }
    }

    /// Events matching `condition` with the checksum each row stores, unchecked (for `verify`).
    static func rows(
        where condition: String, _ binds: PostgresBindings, on connection: PostgresConnection, tables: Tables, logger: Logger
    ) async throws -> [(RecordedEvent, Int64)] {
        let rows = try await connection.query(
            PostgresQuery(unsafeSQL: "SELECT \(eventColumns) FROM \(tables.events) WHERE \(condition)", binds: binds), logger: logger)
        var events: [(RecordedEvent, Int64)] = []
        for try await row in rows {
            let (
                eventId, streamId, type, schemaVersion, streamVersion, position, recordedAt, correlationId, causationId, data, checksum, traceParent
            ) =
                try row.decode((String, String, String, Int64, Int64, Int64, Int64, String?, String?, ByteBuffer, Int64, String?).self)
            let event = RecordedEvent(
                eventId: eventId, streamId: streamId, type: type, schemaVersion: Int(schemaVersion), streamVersion: streamVersion,
                position: position, recordedAt: recordedAt, correlationId: correlationId, causationId: causationId,
                data: Array(data.readableBytesView), traceParent: traceParent)
            events.append((event, checksum))
        }
        return events
    }

    private static func streamVersion(
        _ streamId: String, on connection: PostgresConnection, tables: Tables, logger: Logger
    ) async throws -> Int64 {
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: "SELECT stream_version FROM \(tables.events) WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
                binds: binds(streamId)),
            logger: logger)
        return try await rows.collect().first?.decode(Int64.self) ?? 0
    }

    private static func commandResult(
        _ commandId: String, on connection: PostgresConnection, tables: Tables, logger: Logger
    ) async throws -> AppendResult? {
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: "SELECT stream_id, version, position, digest FROM \(tables.commands) WHERE command_id = $1",
                binds: binds(commandId)),
            logger: logger)
        guard let row = try await rows.collect().first else { return nil }
        let (streamId, version, position, digest) = try row.decode((String, Int64, Int64, String).self)
        return AppendResult(streamId: streamId, version: version, position: position, commandDigest: digest)
    }

    /// Runs a read on a pooled connection; a database failure is `unavailable`.
    private func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await withConnection(body)
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError.unavailable(PostgresErrors.describe(error))
        }
    }

    public func readStream(_ streamId: String, fromVersion: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try AppendRules.checkPage(maxCount)
        return try await read { [tables, logger] connection in
            try await Self.events(
                where: "stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3",
                Self.binds(streamId, fromVersion, Int64(maxCount)), on: connection, tables: tables, logger: logger)
        }
    }

    public func readAll(fromPosition: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try AppendRules.checkPage(maxCount)
        return try await read { [tables, logger] connection in
            try await Self.events(
                where: "position >= $1 ORDER BY position LIMIT $2", Self.binds(fromPosition, Int64(maxCount)), on: connection,
                tables: tables, logger: logger)
        }
    }

    /// The last committed position in the database: appends by every replica count.
    public func headPosition() async throws -> Int64 {
        let position = try await read { [tables, logger] connection in
            try await connection.query(PostgresQuery(unsafeSQL: "SELECT position FROM \(tables.head)"), logger: logger)
                .collect().first?.decode(Int64.self) ?? 0
        }
        head.advance(to: position)
        return position
    }

    public func streamVersion(_ streamId: String) async throws -> Int64 {
        try await read { [tables, logger] in try await Self.streamVersion(streamId, on: $0, tables: tables, logger: logger) }
    }

    public func waitForEvents(after position: Int64, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if head.current > position { return true }
            _ = try? await headPosition()
            if head.current > position { return true }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            if await head.wait(untilAbove: position, timeout: min(left, options.pollInterval)) { return true }
            if Task.isCancelled { return false }
        }
    }

    public func commandResult(_ commandId: String) async throws -> AppendResult? {
        try await read { [tables, logger] in try await Self.commandResult(commandId, on: $0, tables: tables, logger: logger) }
    }

    public func loadSnapshot(_ streamId: String) async throws -> Snapshot? {
        try await read { [tables, logger] connection in
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: "SELECT version, type, data FROM \(tables.snapshots) WHERE stream_id = $1", binds: Self.binds(streamId)),
                logger: logger)
            guard let row = try await rows.collect().first else { return nil }
            let (version, type, data) = try row.decode((Int64, String, ByteBuffer).self)
            return Snapshot(streamId: streamId, version: version, type: type, data: Array(data.readableBytesView))
        }
    }

    public func checkpoint(_ name: String) async throws -> Int64? {
        try await read { [tables, logger] connection in
            try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT position FROM \(tables.checkpoints) WHERE name = $1", binds: Self.binds(name)),
                logger: logger
            )
            .collect().first?.decode(Int64.self)
        }
    }

    // MARK: Helpers

    static func binds(_ values: any PostgresNonThrowingEncodable...) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values { binds.append(value) }
        return binds
    }
}
