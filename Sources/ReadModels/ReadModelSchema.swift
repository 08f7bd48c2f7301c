import SQLite

/// The SQLite file's own tables: the bookkeeping that makes applying events exactly once in
/// effect (stream versions, partition offsets, handled positions, parked events), versioned by
/// `PRAGMA user_version`; then every projection's tables (`ProjectionMigrations`).
///
/// The same schema serves the live database and a rebuild's fresh one, so a rebuild's tables can
/// be copied over the live ones in a single transaction.
enum ReadModelSchema {
    /// Version 3 keeps each projection's schema version in `projection_versions`. Versions 1 and 2
    /// created the accounts' and orders' tables with the bookkeeping; their projections' first
    /// migrations find them there.
    static let version: Int64 = 3

    /// Opens a read-model database: WAL (queries never wait for the projection), and
    /// `synchronous=NORMAL`: a commit survives a crash of the process; a power loss may take the
    /// last commits, but the partition offsets go back with them, so the events are applied again.
    static func open(_ path: String, projections: [any ReadModelProjection] = ReadSide.projections) throws -> SQLiteConnection {
        let db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")
        try migrate(db, projections: projections)
        return db
    }

    static func migrate(_ db: SQLiteConnection, projections: [any ReadModelProjection] = ReadSide.projections) throws {
        let version = try db.first("PRAGMA user_version") { $0.int64(0) } ?? 0
        guard version <= Self.version else {
            throw ReadModelError.invalid("the read models are at schema version \(version), newer than this program's \(Self.version)")
        }
        if version == 0 { try createCurrent(db) }
        if version == 1 { try migrateToVersion2(db) }
        if (1...2).contains(version) { try migrateToVersion3(db) }
        try db.transaction { try ProjectionMigrations.run(db, sql: ReadModelSQL(engine: .sqlite), projections: projections) }
    }

    /// Version 2 tells events apart by id, not only by stream version: `streams.event_id` is the
    /// last applied event's id (empty for rows applied before), and parked entries are unique per
    /// event, so a second, different event claiming a parked stream version is kept (as a
    /// CONFLICT) instead of being dropped as a duplicate.
    private static func migrateToVersion2(_ db: SQLiteConnection) throws {
        try db.execute(
            """
            BEGIN;
            ALTER TABLE streams ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
            DROP INDEX parked_event;
            CREATE UNIQUE INDEX parked_event ON parked(stream_id, stream_version, event_id) WHERE stream_id <> '';
            PRAGMA user_version = 2;
            COMMIT;
            """)
    }

    private static func migrateToVersion3(_ db: SQLiteConnection) throws {
        try db.execute(
            """
            BEGIN;
            \(ProjectionMigrations.versionsTable(ReadModelSQL(engine: .sqlite)));
            PRAGMA user_version = 3;
            COMMIT;
            """)
    }

    /// A new database's bookkeeping, at the current version.
    private static func createCurrent(_ db: SQLiteConnection) throws {
        try db.execute(
            """
            BEGIN;
            CREATE TABLE streams(stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL, event_id TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
            CREATE TABLE offsets(
                topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, PRIMARY KEY(topic, partition)
            ) WITHOUT ROWID;
            CREATE TABLE handled_positions(position INTEGER PRIMARY KEY);
            CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE parked(
                id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                offset INTEGER NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, stream_id TEXT NOT NULL,
                stream_version INTEGER NOT NULL, position INTEGER NOT NULL, schema_version INTEGER NOT NULL,
                recorded_at INTEGER NOT NULL, data BLOB, error TEXT NOT NULL, attempts INTEGER NOT NULL, parked_at INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX parked_event ON parked(stream_id, stream_version, event_id) WHERE stream_id <> '';
            \(ProjectionMigrations.versionsTable(ReadModelSQL(engine: .sqlite)));
            PRAGMA user_version = 3;
            COMMIT;
            """)
    }
}

/// Brings every projection's tables to its latest migration, recording each projection's
/// version in `projection_versions`. The caller runs it in a transaction (with whatever lock keeps
/// other processes from migrating at the same time).
public enum ProjectionMigrations {
    /// The bookkeeping table's DDL.
    static func versionsTable(_ sql: ReadModelSQL) -> String {
        "CREATE TABLE IF NOT EXISTS \(sql.table("projection_versions"))(name TEXT PRIMARY KEY, version \(sql.int64) NOT NULL)"
    }

    public static func run(_ db: any ReadModelDatabase, sql: ReadModelSQL, projections: [any ReadModelProjection]) throws {
        try db.execute(versionsTable(sql))
        for projection in projections {
            let steps = projection.migrations.map(\.version)
            precondition(steps.elementsEqual(1..<(steps.count + 1)), "\(projection.name)'s migrations are not numbered 1, 2, …")
            let current =
                try db.first("SELECT version FROM \(sql.table("projection_versions")) WHERE name = ?", .text(projection.name)) {
                    $0.int64(0)
                } ?? 0
            guard current <= Int64(steps.count) else {
                throw ReadModelError.invalid(
                    "the \(projection.name) read model is at schema version \(current), newer than this program's \(steps.count)")
            }
            for migration in projection.migrations where migration.version > current {
                try db.execute(migration.sql(sql))
                try db.run(
                    """
                    INSERT INTO \(sql.table("projection_versions"))(name, version) VALUES(?, ?)
                    ON CONFLICT(name) DO UPDATE SET version = excluded.version
                    """, .text(projection.name), .integer(Int64(migration.version)))
            }
        }
    }
}
