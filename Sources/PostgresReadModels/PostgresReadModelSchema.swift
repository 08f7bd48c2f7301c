import Logging
import ReadModels

/// The read models' bookkeeping on PostgreSQL: the same tables, columns and column order as the
/// SQLite file's (`ReadModelSchema`), so the one SQL of the projection, the queries and the swap
/// serves both; 64-bit integers throughout. Then every projection's tables
/// (`ProjectionMigrations`, with `"schema".` before each table name).
///
/// Versioned in `meta` (`schema_version`), migrated under a transaction-scoped advisory lock so
/// replicas starting together do not race. Every text column then compares as bytes
/// (`byteOrderText`).
enum PostgresReadModelSchema {
    /// Version 2 keeps each projection's schema version in `projection_versions`; version 1
    /// created the accounts' and orders' tables with the bookkeeping, where their projections'
    /// first migrations find them.
    static let version: Int64 = 2

    /// Creates `schema` and its tables, or brings them up to `version`.
    static func migrate(
        _ db: any ReadModelDatabase, schema: String, projections: [any ReadModelProjection] = ReadSide.projections, logger: Logger? = nil
    ) throws {
        let sql = ReadModelSQL(engine: .postgres, prefix: "\"\(schema)\".")
        try db.transaction {
            try db.run("SELECT pg_advisory_xact_lock(hashtext(?))", .text("jframe-readmodels-schema:\(schema)"))
            try db.execute("CREATE SCHEMA IF NOT EXISTS \"\(schema)\"")
            let exists = try db.first(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = 'meta'", .text(schema)
            ) { $0.int64(0) }
            let current =
                exists == nil ? 0 : try db.first("SELECT value FROM \"\(schema)\".meta WHERE key = 'schema_version'") { $0.int64(0) } ?? 0
            guard current <= version else {
                throw ReadModelError.invalid("the read models in \(schema) are at schema version \(current), newer than this program's \(version)")
            }
            if current < 1 { try db.execute(bookkeeping(schema)) }
            try db.run("UPDATE \"\(schema)\".meta SET value = ? WHERE key = 'schema_version'", .integer(version))
            try ProjectionMigrations.run(db, sql: sql, projections: projections)
            try byteOrderText(db, schema: schema, logger: logger)
        }
    }

    /// Gives every text column of the schema's tables the collation "C" (byte order), where it
    /// has another: the bookkeeping's and every projection's, those a projection's migration just
    /// made included, so that it holds for tables no version here knows of.
    ///
    /// Why: SQLite compares text as bytes (`BINARY`), and PostgreSQL by the database's default
    /// collation, on most systems a language's (`en_US.UTF-8`). Pages of accounts, jobs,
    /// applications and customers are read in key order (`WHERE account_id > ? ORDER BY
    /// account_id`), so the two engines listed the same rows in different orders; with "C" both
    /// give byte order. A language's collation also makes each key comparison of an index
    /// search or insert a `strcoll` call where "C" is a `memcmp` (the event store's appends
    /// spent about a quarter less of PostgreSQL's CPU with "C", `PostgresEventStoreSchema`).
    ///
    /// Not a schema version: builds before it read and write such columns the same way, so a
    /// replica of one may go on beside a migrated schema. On tables with rows, PostgreSQL keeps
    /// the table and builds the indexes on those columns again, under the table's exclusive lock
    /// (about 2 s a million rows an index); once done, the check finds nothing to change.
    static func byteOrderText(_ db: any ReadModelDatabase, schema: String, logger: Logger?) throws {
        let columns = try db.query(
            """
            SELECT c.table_name, c.column_name, coalesce(t.reltuples, 0)::bigint FROM information_schema.columns c
            JOIN pg_class t ON t.oid = to_regclass(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))
            WHERE c.table_schema = ? AND c.data_type = 'text' AND c.collation_name IS DISTINCT FROM 'C'
            ORDER BY c.table_name, c.ordinal_position
            """, .text(schema)
        ) { (table: $0.text(0), column: $0.text(1), rows: $0.int64(2)) }
        guard !columns.isEmpty else { return }
        // The writers' turn first: a writer's transaction takes it before any table, so none can
        // hold a table this step waits for while waiting for one it holds.
        try PostgresSharing.takeTurn(db, schema: schema)
        for (table, changes) in Dictionary(grouping: columns, by: \.table).sorted(by: { $0.key < $1.key }) {
            if let rows = changes.first?.rows, rows > 0 {
                logger?.info(
                    "giving the read models' text columns byte order (indexes on them are built again)",
                    metadata: ["schema": "\(schema)", "table": "\(table)", "rows": "\(rows)"])
            }
            let alterations = changes.map { "ALTER COLUMN \"\($0.column)\" TYPE TEXT COLLATE \"C\"" }
            try db.execute("ALTER TABLE \"\(schema)\".\"\(table)\" \(alterations.joined(separator: ", "))")
        }
    }

    static func bookkeeping(_ schema: String) -> String {
        let s = "\"\(schema)\""
        return """
            CREATE TABLE \(s).streams(stream_id TEXT PRIMARY KEY, version BIGINT NOT NULL, event_id TEXT NOT NULL DEFAULT '');
            CREATE TABLE \(s).offsets(
                topic TEXT NOT NULL, partition BIGINT NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY(topic, partition)
            );
            CREATE TABLE \(s).handled_positions(position BIGINT PRIMARY KEY);
            CREATE TABLE \(s).meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL);
            CREATE TABLE \(s).parked(
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, state TEXT NOT NULL, topic TEXT NOT NULL,
                partition BIGINT NOT NULL, "offset" BIGINT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
                stream_id TEXT NOT NULL, stream_version BIGINT NOT NULL, position BIGINT NOT NULL, schema_version BIGINT NOT NULL,
                recorded_at BIGINT NOT NULL, data BYTEA, error TEXT NOT NULL, attempts BIGINT NOT NULL, parked_at BIGINT NOT NULL
            );
            CREATE UNIQUE INDEX parked_event ON \(s).parked(stream_id, stream_version, event_id) WHERE stream_id <> '';
            INSERT INTO \(s).meta(key, value) VALUES('schema_version', 1)
            """
    }
}
