import EventStore
import Logging
import NIOCore
import PostgresConnections
import PostgresNIO
import Synchronization

// The statements of a batch's write paths (`commit` in PostgresEventStore.swift chooses one):
// from memory (KnownStreams), optimistic (unlocked reads, then a head-checked write), and the
// reads and inserts of the locked transaction.

extension PostgresEventStore {
    static func decide(_ request: AppendRequest, in plan: inout AppendBatchPlan, recordedAt: Int64) -> Outcome {
        do {
            return .appended(try plan.decide(request, recordedAt: recordedAt))
        } catch let refusal as EventStoreError {
            return .refused(refusal)
        } catch {
            return .refused(EventStoreError.unavailable("\(error)"))
        }
    }

    /// A batch of appends in two statements, each its own transaction: the reads (no lock), then
    /// one statement that takes the head lock (waiting at most `lockWait`) and, only if the head
    /// is still where the reads saw it, writes the rows and moves the head. Every append moves
    /// the head, so an unmoved head means the reads are still current; the lock, held to the
    /// statement's commit, keeps positions gap-free and in commit order as the transaction path
    /// does. Two round trips where that path makes four, and the head is locked for one
    /// statement instead of a transaction's round trips.
    ///
    /// Nil when the head moved (another replica appended): nothing was written, and the batch
    /// goes the locked way. A batch with nothing to write (refusals and
    /// repeats only) is answered from the reads, which were the store's committed state.
    static func commitOptimistically(
        _ jobs: [Job], _ touched: Touched, recordedAt: Int64, lockWait: Duration?, on connection: PostgresConnection, tables: Tables,
        logger: Logger
    ) async throws -> (outcomes: [Outcome], plan: AppendBatchPlan, base: Int64)? {
        var plan = try await read(touched, locking: false, on: connection, tables: tables, logger: logger)
        let base = plan.head
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(jobs.count)
        for case .append(let request, _, _) in jobs { outcomes.append(decide(request, in: &plan, recordedAt: recordedAt)) }
        guard !plan.newEvents.isEmpty else { return (outcomes, plan, base) }
        guard try await insert(plan, ifHeadIs: base, lockWait: lockWait, on: connection, tables: tables) == .written else { return nil }
        return (outcomes, plan, base)
    }

    enum FromMemory {
        case committed([Outcome], AppendBatchPlan, base: Int64)
        /// Another replica appended since: the head is there now, and nothing was written.
        case headMoved(to: Int64)
        /// Memory cannot decide it: an append the plan would refuse or answer as a repeat (the
        /// reads must confirm those), or a command id or event id the database already holds.
        case undecided
    }

    /// A batch of appends to streams whose versions are known (`KnownStreams`), decided without
    /// reading and written by the one statement that checks the head: one round trip. Memory
    /// knows versions, not command ids or event ids: every append must come out new, and a
    /// repeated id the database holds fails the write on its unique key (nothing written), so
    /// the reads decide it. A version memory holds that another replica has since passed fails
    /// it the same way, on `(stream_id, stream_version)`: versions only grow one by one, so the
    /// version a stale plan writes is already stored.
    static func commitFromMemory(
        _ jobs: [Job], _ plan: AppendBatchPlan, recordedAt: Int64, lockWait: Duration?, on connection: PostgresConnection,
        tables: Tables, logger: Logger
    ) async throws -> FromMemory {
        var plan = plan
        let base = plan.head
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(jobs.count)
        var eventCount = 0
        for case .append(let request, _, _) in jobs {
            let outcome = decide(request, in: &plan, recordedAt: recordedAt)
            guard case .appended(let result) = outcome, !result.duplicate else { return .undecided }
            outcomes.append(outcome)
            eventCount += request.events.count
        }
        guard eventCount == plan.newEvents.count, eventCount > 0 else { return .undecided }
        do {
            switch try await insert(plan, ifHeadIs: base, lockWait: lockWait, on: connection, tables: tables) {
            case .written: return .committed(outcomes, plan, base: base)
            case .moved(let head): return .headMoved(to: head)
            }
        } catch let error where PostgresErrors.sqlState(error)?.hasPrefix("23") == true {
            return .undecided
        }
    }

    /// What a batch's appends touch, as ids to read.
    struct Touched: Sendable {
        var commandIds: [String] = []
        var eventIds: [String] = []
        var streamIds: [String] = []

        init(_ jobs: [Job]) {
            var streams = Set<String>()
            for case .append(let request, _, _) in jobs {
                if let commandId = request.commandId { commandIds.append(commandId) }
                eventIds += request.events.map(\.eventId)
                if streams.insert(request.streamId).inserted { streamIds.append(request.streamId) }
            }
        }
    }

    /// Reads the head and what the batch's appends touch in one statement (one round trip where
    /// a lock and three reads took four), into a plan that decides them in memory; `locking`
    /// also locks the head (inside a transaction).
    ///
    /// When it locks, the reads see the statement's snapshot, taken before the lock was granted,
    /// while the lock sees the latest committed row. Every append moves the head, so when the head the snapshot
    /// saw equals the locked one, nothing was appended in between and the reads are current.
    /// When they differ (another replica committed while this one waited for the lock), the
    /// statement runs again, its snapshot now taken after the lock.
    static func read(
        _ touched: Touched, locking: Bool, on connection: PostgresConnection, tables: Tables, logger: Logger
    ) async throws -> AppendBatchPlan {
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    WITH locked AS (SELECT position FROM \(tables.head)\(locking ? " FOR UPDATE" : ""))
                    SELECT 0, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
                        (SELECT position FROM locked), (SELECT position FROM \(tables.head)), NULL::bigint, NULL::bigint, NULL::bigint,
                        NULL::bytea
                    UNION ALL
                    SELECT 1, command_id, stream_id, digest, NULL, NULL, NULL, version, position, NULL, NULL, NULL, NULL
                    FROM \(tables.commands) WHERE command_id = ANY($1)
                    UNION ALL
                    SELECT 2, event_id, stream_id, type, correlation_id, causation_id, trace_parent,
                        schema_version, stream_version, position, recorded_at, checksum, data
                    FROM \(tables.events) WHERE event_id = ANY($2)
                    UNION ALL
                    SELECT 3, s.id, NULL, NULL, NULL, NULL, NULL, v.stream_version, NULL, NULL, NULL, NULL, NULL
                    \(lastVersions(tables, of: "$3"))
                    """,
                binds: PostgresArrayBind.bindings(touched.commandIds, touched.eventIds, touched.streamIds)),
            logger: logger)
        var (locked, seen): (Int64?, Int64?) = (nil, nil)
        var commands: [String: AppendResult] = [:]
        var events: [String: RecordedEvent] = [:]
        var versions: [String: Int64] = [:]
        for try await row in rows {
            let cells = row.makeRandomAccess()
            func text(_ index: Int) throws -> String? { try cells[index].decode(String?.self) }
            func number(_ index: Int) throws -> Int64? { try cells[index].decode(Int64?.self) }
            switch try cells[0].decode(Int32.self) {
            case 0:
                (locked, seen) = (try number(7) ?? 0, try number(8) ?? 0)
            case 1:
                guard let commandId = try text(1), let streamId = try text(2), let version = try number(7), let position = try number(8)
                else { continue }
                commands[commandId] = AppendResult(streamId: streamId, version: version, position: position, commandDigest: try text(3) ?? "")
            case 2:
                guard let eventId = try text(1), let streamId = try text(2), let type = try text(3), let schemaVersion = try number(7),
                    let streamVersion = try number(8), let position = try number(9), let recordedAt = try number(10),
                    let checksum = try number(11), let data = try cells[12].decode(ByteBuffer?.self)
                else { continue }
                let event = RecordedEvent(
                    eventId: eventId, streamId: streamId, type: type, schemaVersion: Int(schemaVersion), streamVersion: streamVersion,
                    position: position, recordedAt: recordedAt, correlationId: try text(4), causationId: try text(5),
                    data: Array(data.readableBytesView), traceParent: try text(6))
                guard EventChecksum.of(event) == checksum else { throw EventChecksum.damaged(event, stored: checksum) }
                events[eventId] = event
            default:
                if let streamId = try text(1), let version = try number(7) { versions[streamId] = version }
            }
        }
        guard let locked else { throw EventStoreError.unavailable("the store's head row is missing") }
        // Read again: this transaction holds the lock now, so the new statement's snapshot has
        // every append before it, and the head cannot move; the two agree the second time.
        guard locked == seen else { return try await read(touched, locking: locking, on: connection, tables: tables, logger: logger) }
        return AppendBatchPlan(head: locked, commands: commands, events: events, versions: versions)
    }

    /// The rows of each stream's last version, as `s.id` and `v.stream_version` (a stream with no
    /// events has no row), for the streams in the text array `streamIds` (a parameter).
    ///
    /// One backward step down the `(stream_id, stream_version)` index per stream: a `max(…)
    /// … GROUP BY` over `stream_id = ANY(…)` was planned as a scan of every event of the
    /// streams (a sequential scan at 32,000 events, 10.5 ms for 64 streams, growing with
    /// them), against 0.8 ms this way whatever their length.
    private static func lastVersions(_ tables: Tables, of streamIds: String) -> String {
        """
        FROM unnest(\(streamIds)::text[]) AS s(id)
        CROSS JOIN LATERAL (SELECT stream_version FROM \(tables.events) WHERE stream_id = s.id ORDER BY stream_version DESC LIMIT 1) v
        """
    }

    /// What a write that checks the head found.
    enum HeadCheck: Equatable {
        case written
        /// Another replica moved the head there: nothing was written.
        case moved(to: Int64)
    }

    /// Writes the plan's rows and moves the head, in one call of the schema's `append_rows_at`
    /// function: its events, its command results and the head's new position, so a transaction
    /// of any size makes one round trip for all its writes. With `ifHeadIs`, it first takes the
    /// head lock (waiting at most `lockWait`, when given), and writes nothing unless the head is
    /// still there.
    static func insert(
        _ plan: AppendBatchPlan, ifHeadIs base: Int64? = nil, lockWait: Duration? = nil, on connection: PostgresConnection,
        tables: Tables
    ) async throws -> HeadCheck {
        let events = plan.newEvents
        guard !events.isEmpty else { return .written }
        let commands = plan.newCommands
        var binds = AppendRowsCall.Parameters()
        binds.append(PostgresArrayBind(events.map(\.position)))
        binds.append(PostgresArrayBind(events.map(\.eventId)))
        binds.append(PostgresArrayBind(events.map(\.streamId)))
        binds.append(PostgresArrayBind(events.map(\.streamVersion)))
        binds.append(PostgresArrayBind(events.map(\.type)))
        binds.append(PostgresArrayBind(events.map { Int64($0.schemaVersion) }))
        binds.append(PostgresArrayBind(events.map(\.recordedAt)))
        // Arrays cannot carry NULLs here: a flag beside each optional text says whether it is there.
        binds.append(PostgresArrayBind(events.map { $0.correlationId ?? "" }))
        binds.append(PostgresArrayBind(events.map { $0.correlationId != nil }))
        binds.append(PostgresArrayBind(events.map { $0.causationId ?? "" }))
        binds.append(PostgresArrayBind(events.map { $0.causationId != nil }))
        binds.append(PostgresArrayBind(bytea: events.map(\.data)))
        binds.append(PostgresArrayBind(events.map { EventChecksum.of($0) }))
        binds.append(PostgresArrayBind(events.map { $0.traceParent ?? "" }))
        binds.append(PostgresArrayBind(events.map { $0.traceParent != nil }))
        binds.append(PostgresArrayBind(commands.map(\.commandId)))
        binds.append(PostgresArrayBind(commands.map(\.result.streamId)))
        binds.append(PostgresArrayBind(commands.map(\.result.version)))
        binds.append(PostgresArrayBind(commands.map(\.result.position)))
        binds.append(PostgresArrayBind(commands.map(\.digest)))
        binds.append(plan.head)
        binds.append(base)
        // At least a millisecond: PostgreSQL reads a lock_timeout of 0 as none.
        binds.append(lockWait.map { max(1, $0.wholeMilliseconds) })
        let found = try await tables.appendRowsCall.call(binds, on: connection)
        guard let base, let found, found != base else { return .written }
        return .moved(to: found)
    }
}

/// The call of a schema's `append_rows_at`, prepared once per connection and then only bound and
/// executed.
///
/// Why prepared: sent as an unnamed statement, the call was parsed, analysed and planned on
/// every batch, a tenth of the server's time for a lone command (perf), and its Parse and
/// descriptions made and decoded here each time.
///
/// Why postgres-nio's EventLoopFuture API (`prepare(query:)`, `PreparedQuery.execute`) and not
/// `PostgresPreparedStatement`: that one answers with an async sequence of rows, and reading its
/// one row through `NIOThrowingAsyncSequenceProducer` (its generic state machines, their metadata
/// looked up at run time, a cancellation handler per `next`) cost more than the rest of the
/// call. The future API collects the row on the event loop. It prepares per connection, so the
/// prepared statements are kept here by connection (a kept connection is not freed, so its
/// identifier is not reused; closed ones are dropped when another is prepared). Its errors are
/// `PostgresError`s, not `PSQLError`s: `PostgresErrors.sqlState` reads both.
final class AppendRowsCall: Sendable {
    /// The statement's parameters, written into one buffer and handed over as slices of it.
    struct Parameters {
        private var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        private var slices: [(type: PostgresDataType, start: Int, length: Int?)] = []

        init() { slices.reserveCapacity(23) }

        mutating func append(_ array: PostgresArrayBind) {
            let start = buffer.writerIndex
            array.encode(into: &buffer, context: .default)
            slices.append((array.psqlType, start, buffer.writerIndex - start))
        }

        mutating func append(_ value: Int64?) {
            let start = buffer.writerIndex
            guard let value else { return slices.append((.int8, start, nil)) }
            buffer.writeInteger(value)
            slices.append((.int8, start, 8))
        }

        var values: [PostgresData] {
            slices.map { slice in
                PostgresData(
                    type: slice.type, formatCode: .binary,
                    value: slice.length.map { buffer.getSlice(at: slice.start, length: $0)! })
            }
        }
    }

    private let sql: String
    private let prepared = Mutex<[ObjectIdentifier: (connection: PostgresConnection, statement: PreparedQuery)]>([:])

    init(function: String) {
        sql =
            "SELECT \(function)($22, $21, $23, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    }

    /// The head the call found when it checked one (see `insert`), else nil.
    func call(_ parameters: Parameters, on connection: PostgresConnection) async throws -> Int64? {
        let statement = try await statement(on: connection)
        let rows = try await statement.execute(parameters.values).get()
        guard let row = rows.first, let cell = row.first else {
            throw EventStoreError.unavailable("append_rows_at answered without its one value")
        }
        guard let bytes = cell.bytes else { return nil }
        // Read as bytes: this API's rows claim the text format for values sent in binary (the
        // description kept from `prepare` is the one before postgres-nio asked for binary).
        guard bytes.readableBytes == 8, let head = bytes.getInteger(at: bytes.readerIndex, as: Int64.self) else {
            throw EventStoreError.unavailable("append_rows_at answered \(bytes.readableBytes) bytes for a bigint")
        }
        return head
    }

    private func statement(on connection: PostgresConnection) async throws -> PreparedQuery {
        let key = ObjectIdentifier(connection)
        if let kept = prepared.withLock({ $0[key] }) { return kept.statement }
        let statement = try await connection.prepare(query: sql).get()
        prepared.withLock { kept in
            kept = kept.filter { !$0.value.connection.isClosed }
            kept[key] = (connection, statement)
        }
        return statement
    }
}
