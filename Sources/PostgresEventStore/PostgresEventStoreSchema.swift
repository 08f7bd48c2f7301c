import EventStore
import Logging
import PostgresNIO

/// The store's table names, qualified by its schema. The schema name is checked once here, as it
/// is the one part of the SQL that cannot be a bound parameter.
struct Tables: Sendable {
    let schema: String
    let events: String
    let commands: String
    let snapshots: String
    let checkpoints: String
    let head: String
    let migrations: String
    /// The function that writes a batch (schema version 3; kept for replicas of older builds).
    let appendRows: String
    /// The one that writes a batch or says where the head went (schema version 4).
    let appendRowsAt: String
    /// Its call, prepared per connection.
    let appendRowsCall: AppendRowsCall

    init(schema: String) throws {
        let allowed = schema.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
        guard !schema.isEmpty, schema.utf8.count <= 63, allowed, let first = schema.utf8.first, !(0x30...0x39).contains(first) else {
            throw EventStoreError.invalid("a PostgreSQL schema name is 1 to 63 of a-z, 0-9 and _, not starting with a digit: '\(schema)'")
        }
        self.schema = schema
        events = "\(schema).events"
        commands = "\(schema).commands"
        snapshots = "\(schema).snapshots"
        checkpoints = "\(schema).checkpoints"
        head = "\(schema).head"
        migrations = "\(schema).schema_migrations"
        appendRows = "\(schema).append_rows"
        appendRowsAt = "\(schema).append_rows_at"
        appendRowsCall = AppendRowsCall(function: appendRowsAt)
    }
}

/// The store's schema, versioned in `schema_migrations` so that a database made by an older build
/// migrates forward when a replica opens it. Replicas starting together take turns: each
/// migration runs in one transaction under an advisory lock named after the schema.
enum PostgresEventStoreSchema {
    /// Each step, in order, as its statements (one statement per query: the extended protocol
    /// takes no more); the version is the step's index plus one.
    static func steps(_ tables: Tables) -> [[String]] {
        [
            [
                """
                CREATE TABLE \(tables.events)(
                    position BIGINT PRIMARY KEY,
                    event_id TEXT COLLATE "C" NOT NULL UNIQUE,
                    stream_id TEXT COLLATE "C" NOT NULL,
                    stream_version BIGINT NOT NULL,
                    type TEXT NOT NULL,
                    schema_version BIGINT NOT NULL,
                    recorded_at BIGINT NOT NULL,
                    correlation_id TEXT,
                    causation_id TEXT,
                    data BYTEA NOT NULL,
                    checksum BIGINT NOT NULL,
                    UNIQUE(stream_id, stream_version))
                """,
                """
                CREATE TABLE \(tables.commands)(
                    command_id TEXT COLLATE "C" PRIMARY KEY, stream_id TEXT NOT NULL, version BIGINT NOT NULL, position BIGINT NOT NULL,
                    digest TEXT NOT NULL DEFAULT '')
                """,
                "CREATE TABLE \(tables.snapshots)(stream_id TEXT COLLATE \"C\" PRIMARY KEY, version BIGINT NOT NULL, type TEXT NOT NULL, data BYTEA NOT NULL)",
                "CREATE TABLE \(tables.checkpoints)(name TEXT COLLATE \"C\" PRIMARY KEY, position BIGINT NOT NULL)",
                // The one row every appending transaction locks first (see PostgresEventStore).
                "CREATE TABLE \(tables.head)(only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row), position BIGINT NOT NULL)",
                "INSERT INTO \(tables.head)(position) VALUES (0)",
            ],
            // 2: the trace context each event was appended in (NewEvent.traceParent).
            ["ALTER TABLE \(tables.events) ADD COLUMN trace_parent TEXT"],
            // 3: a batch's writes as one function call, whose statements' plans each session
            // caches (see PostgresEventStore.insert).
            [appendRowsFunction(tables)],
            // 4: a batch from memory waits for the head and learns where it went (PostgresEventStore.commitFromMemory).
            [appendRowsAtFunction(tables)],
        ]
    }

    /// The text columns the store's indexes are on, as (table, column): made with the collation
    /// "C", and given it by `byteOrderKeys` in schemas an older build made.
    static let keyColumns: [(table: String, column: String)] = [
        ("events", "event_id"), ("events", "stream_id"), ("commands", "command_id"), ("snapshots", "stream_id"), ("checkpoints", "name"),
    ]

    /// Gives the key columns (`keyColumns`) the collation "C", byte order, where they have
    /// another; after the versioned steps, on every start.
    ///
    /// Why: a column of the database's default collation is compared through the C library's
    /// `strcoll` when its B-tree is searched and inserted into, and where that default is a
    /// language's (`en_US.UTF-8`, what `initdb` picks on most systems) every append pays it in
    /// each of its unique indexes. With "C" the comparison is `memcmp`: PostgreSQL's CPU per
    /// deposit fell from 25-30 µs to 18-21 on such a database (64 clients, 8 interleaved
    /// rounds). What a caller sees does not change: the store only tests these columns for
    /// equality, which under any deterministic collation is byte equality, and orders by
    /// numbers only.
    ///
    /// Not a schema version, so that a replica of an older build, which reads and writes such
    /// columns the same way, still starts beside a schema a newer one changed. On tables with
    /// rows PostgreSQL keeps the tables' files (the type stays `text`) and builds the indexes on
    /// these columns again, under the tables' exclusive lock, in the migration's transaction:
    /// about 2 s a million events.
    static func byteOrderKeys(on connection: PostgresConnection, tables: Tables, logger: Logger) async throws {
        var unordered: [(table: String, column: String)] = []
        let rows = try await connection.query(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = \(tables.schema) AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'
            """, logger: logger
        ).collect()
        for row in rows {
            let (table, column) = try row.decode((String, String).self)
            if keyColumns.contains(where: { $0 == (table, column) }) { unordered.append((table, column)) }
        }
        guard !unordered.isEmpty else { return }
        let estimate = try await estimatedEvents(connection, tables: tables, logger: logger)
        logger.info(
            "giving the event store's keys byte order: their indexes are built again (about 2 s a million events), appends wait",
            metadata: [
                "schema": "\(tables.schema)", "columns": "\(unordered.map { "\($0.table).\($0.column)" }.joined(separator: ","))",
                "events": "\(estimate.map(String.init) ?? "not yet estimated")",
            ])
        // The head first, as every appending transaction takes it first: an append already past
        // it finishes, the next waits here, and none can hold a table this step waits for while
        // waiting for one it holds (altering in another order deadlocked a running replica's
        // appends). Then the tables in the order appends write them.
        try await connection.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(tables.head) IN ACCESS EXCLUSIVE MODE"), logger: logger)
        var tablesInOrder: [String] = []
        for key in keyColumns where !tablesInOrder.contains(key.table) { tablesInOrder.append(key.table) }
        for table in tablesInOrder {
            let alterations = unordered.filter { $0.table == table }.map { "ALTER COLUMN \($0.column) TYPE TEXT COLLATE \"C\"" }
            guard !alterations.isEmpty else { continue }
            try await connection.query(
                PostgresQuery(unsafeSQL: "ALTER TABLE \(tables.schema).\(table) \(alterations.joined(separator: ", "))"), logger: logger)
        }
    }

    /// Writes a batch's events and command results and moves the head; with `in_base`, only if
    /// the head is free and still there (`FOR UPDATE SKIP LOCKED`), returning false otherwise.
    /// Arrays cannot carry NULLs, so a flag beside each optional text says whether it is there.
    static func appendRowsFunction(_ tables: Tables) -> String {
        """
        CREATE OR REPLACE FUNCTION \(tables.appendRows)(in_base BIGINT, in_head BIGINT,
            \(rowParameters)) RETURNS BOOLEAN LANGUAGE plpgsql AS $body$
        BEGIN
            IF in_base IS NOT NULL THEN
                PERFORM 1 FROM \(tables.head) WHERE position = in_base FOR UPDATE SKIP LOCKED;
                IF NOT FOUND THEN RETURN FALSE; END IF;
            END IF;
            \(writeRows(tables))
            RETURN TRUE;
        END
        $body$
        """
    }

    /// Writes a batch's events and command results and moves the head, as `append_rows`, but
    /// with `in_base` it waits for the head lock (at most `in_lock_wait_ms` when given, else the
    /// statement's timeout), and when the head is not at `in_base` writes nothing and answers
    /// the head it found. It answers `in_base` when it wrote (NULL without one: the caller's
    /// transaction holds the lock).
    ///
    /// Why wait and answer the head: with another replica appending, a head that moved was the
    /// common case, and `append_rows` made the store forget all it knew and read; with the head
    /// in hand it plans the batch again from memory at once (`KnownStreams.moved(to:)`).
    static func appendRowsAtFunction(_ tables: Tables) -> String {
        """
        CREATE OR REPLACE FUNCTION \(tables.appendRowsAt)(in_base BIGINT, in_head BIGINT, in_lock_wait_ms BIGINT,
            \(rowParameters)) RETURNS BIGINT LANGUAGE plpgsql AS $body$
        DECLARE
            found_head BIGINT;
        BEGIN
            IF in_base IS NOT NULL THEN
                IF in_lock_wait_ms IS NOT NULL THEN
                    PERFORM set_config('lock_timeout', in_lock_wait_ms::text, true);
                END IF;
                SELECT position INTO found_head FROM \(tables.head) FOR UPDATE;
                IF found_head <> in_base THEN RETURN found_head; END IF;
            END IF;
            \(writeRows(tables))
            RETURN in_base;
        END
        $body$
        """
    }

    /// The parameters both functions take after their own: a batch's rows as arrays.
    private static let rowParameters = """
        in_position BIGINT[], in_event_id TEXT[], in_stream_id TEXT[], in_stream_version BIGINT[], in_type TEXT[],
            in_schema_version BIGINT[], in_recorded_at BIGINT[], in_correlation_id TEXT[], in_has_correlation BOOL[],
            in_causation_id TEXT[], in_has_causation BOOL[], in_data BYTEA[], in_checksum BIGINT[], in_trace_parent TEXT[],
            in_has_trace BOOL[], in_command_id TEXT[], in_command_stream TEXT[], in_command_version BIGINT[],
            in_command_position BIGINT[], in_command_digest TEXT[]
        """

    /// The statements both functions write a batch with: its events, its command results, the head.
    private static func writeRows(_ tables: Tables) -> String {
        """
        INSERT INTO \(tables.events)(position, event_id, stream_id, stream_version, type, schema_version, recorded_at,
                correlation_id, causation_id, data, checksum, trace_parent)
            SELECT x.p, x.e, x.s, x.v, x.t, x.sv, x.r, CASE WHEN x.hc THEN x.c END, CASE WHEN x.hca THEN x.ca END, x.d, x.k,
                CASE WHEN x.htp THEN x.tp END
            FROM unnest(in_position, in_event_id, in_stream_id, in_stream_version, in_type, in_schema_version, in_recorded_at,
                in_correlation_id, in_has_correlation, in_causation_id, in_has_causation, in_data, in_checksum, in_trace_parent,
                in_has_trace) AS x(p, e, s, v, t, sv, r, c, hc, ca, hca, d, k, tp, htp);
            INSERT INTO \(tables.commands)(command_id, stream_id, version, position, digest)
            SELECT * FROM unnest(in_command_id, in_command_stream, in_command_version, in_command_position, in_command_digest);
            UPDATE \(tables.head) SET position = in_head;
        """
    }

    /// The planner's estimate of the events table's rows (`pg_class.reltuples`, kept by
    /// autovacuum and ANALYZE), nil before either ran: counting them would read the whole table.
    private static func estimatedEvents(_ connection: PostgresConnection, tables: Tables, logger: Logger) async throws -> Int64? {
        let rows = try await connection.query(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(\(tables.events))", logger: logger
        ).collect()
        guard let estimate = try rows.first?.decode(Int64.self), estimate >= 0 else { return nil }
        return estimate
    }

    static func migrate(client: PostgresClient, tables: Tables, logger: Logger) async throws {
        try await client.withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtext(\("jframe-eventstore:" + tables.schema)))", logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(tables.schema)"), logger: logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(tables.migrations)(version BIGINT NOT NULL)"), logger: logger)
                let current =
                    try await connection.query(PostgresQuery(unsafeSQL: "SELECT max(version) FROM \(tables.migrations)"), logger: logger)
                    .collect().first?.decode(Int64?.self) ?? nil
                let steps = steps(tables)
                let from = Int(current ?? 0)
                guard from <= steps.count else {
                    throw EventStoreError.unavailable(
                        "the schema \(tables.schema) is at version \(from), newer than this build knows (\(steps.count)): run a newer build")
                }
                for (index, step) in steps.enumerated().dropFirst(from) {
                    logger.info("migrating the event store's schema", metadata: ["schema": "\(tables.schema)", "version": "\(index + 1)"])
                    for statement in step { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "INSERT INTO \(tables.migrations)(version) VALUES (\(index + 1))"), logger: logger)
                }
                try await byteOrderKeys(on: connection, tables: tables, logger: logger)
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }
}
