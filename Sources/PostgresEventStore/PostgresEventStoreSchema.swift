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
    /// The function that writes a batch (schema version 3).
    let appendRows: String
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
        appendRowsCall = AppendRowsCall(function: appendRows)
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
                    event_id TEXT NOT NULL UNIQUE,
                    stream_id TEXT NOT NULL,
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
                    command_id TEXT PRIMARY KEY, stream_id TEXT NOT NULL, version BIGINT NOT NULL, position BIGINT NOT NULL,
                    digest TEXT NOT NULL DEFAULT '')
                """,
                "CREATE TABLE \(tables.snapshots)(stream_id TEXT PRIMARY KEY, version BIGINT NOT NULL, type TEXT NOT NULL, data BYTEA NOT NULL)",
                "CREATE TABLE \(tables.checkpoints)(name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
                // The one row every appending transaction locks first (see PostgresEventStore).
                "CREATE TABLE \(tables.head)(only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row), position BIGINT NOT NULL)",
                "INSERT INTO \(tables.head)(position) VALUES (0)",
            ],
            // 2: the trace context each event was appended in (NewEvent.traceParent).
            ["ALTER TABLE \(tables.events) ADD COLUMN trace_parent TEXT"],
            // 3: a batch's writes as one function call, whose statements' plans each session
            // caches (see PostgresEventStore.insert).
            [appendRowsFunction(tables)],
        ]
    }

    /// Writes a batch's events and command results and moves the head; with `in_base`, only if
    /// the head is free and still there (`FOR UPDATE SKIP LOCKED`), returning false otherwise.
    /// Arrays cannot carry NULLs, so a flag beside each optional text says whether it is there.
    static func appendRowsFunction(_ tables: Tables) -> String {
        """
        CREATE OR REPLACE FUNCTION \(tables.appendRows)(in_base BIGINT, in_head BIGINT,
            in_position BIGINT[], in_event_id TEXT[], in_stream_id TEXT[], in_stream_version BIGINT[], in_type TEXT[],
            in_schema_version BIGINT[], in_recorded_at BIGINT[], in_correlation_id TEXT[], in_has_correlation BOOL[],
            in_causation_id TEXT[], in_has_causation BOOL[], in_data BYTEA[], in_checksum BIGINT[], in_trace_parent TEXT[],
            in_has_trace BOOL[], in_command_id TEXT[], in_command_stream TEXT[], in_command_version BIGINT[],
            in_command_position BIGINT[], in_command_digest TEXT[]) RETURNS BOOLEAN LANGUAGE plpgsql AS $body$
        BEGIN
            IF in_base IS NOT NULL THEN
                PERFORM 1 FROM \(tables.head) WHERE position = in_base FOR UPDATE SKIP LOCKED;
                IF NOT FOUND THEN RETURN FALSE; END IF;
            END IF;
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
            RETURN TRUE;
        END
        $body$
        """
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
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }
}
