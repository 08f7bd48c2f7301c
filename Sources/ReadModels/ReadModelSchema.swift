import SQLite

/// The read models' tables, and the bookkeeping that makes applying them exactly once in effect.
///
/// The same schema serves the live database and a rebuild's fresh one, so a rebuild's tables can
/// be copied over the live ones in a single transaction.
enum ReadModelSchema {
    /// Tables holding the models themselves (replaced whole by a rebuild).
    static let modelTables = ["accounts", "account_transactions", "orders", "customers", "streams"]

    /// Opens a read-model database: WAL (queries never wait for the projection), and
    /// `synchronous=NORMAL`: a commit survives a crash of the process; a power loss may take the
    /// last commits, but the partition offsets go back with them, so the events are applied again.
    static func open(_ path: String) throws -> SQLiteConnection {
        let db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")
        try migrate(db)
        return db
    }

    static func migrate(_ db: SQLiteConnection) throws {
        let version = try db.first("PRAGMA user_version") { $0.int64(0) } ?? 0
        if version < 1 { try createVersion1(db) }
        if version < 2 { try migrateToVersion2(db) }
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

    static func createVersion1(_ db: SQLiteConnection) throws {
        try db.execute(
            """
            BEGIN;
            CREATE TABLE accounts(
                account_id TEXT PRIMARY KEY, holder TEXT NOT NULL, holder_key TEXT NOT NULL, account_type TEXT NOT NULL,
                balance_minor INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
                opened_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX accounts_by_holder ON accounts(holder_key, account_id);
            CREATE INDEX accounts_by_balance ON accounts(currency, balance_minor);
            CREATE TABLE account_transactions(
                account_id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, amount_minor INTEGER NOT NULL,
                currency TEXT NOT NULL, balance_after INTEGER NOT NULL, at INTEGER NOT NULL, position INTEGER NOT NULL,
                PRIMARY KEY(account_id, version)
            ) WITHOUT ROWID;
            CREATE TABLE orders(
                order_id TEXT PRIMARY KEY, customer_email TEXT NOT NULL, customer_key TEXT NOT NULL, first_name TEXT NOT NULL,
                last_name TEXT NOT NULL, description TEXT NOT NULL, quantity INTEGER NOT NULL, created_at INTEGER NOT NULL,
                position INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX orders_by_position ON orders(position);
            CREATE INDEX orders_by_customer ON orders(customer_key, position);
            CREATE TABLE customers(
                email_key TEXT PRIMARY KEY, email TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                order_count INTEGER NOT NULL, first_order_at INTEGER NOT NULL, last_order_at INTEGER NOT NULL,
                first_position INTEGER NOT NULL, last_position INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE streams(stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
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
            CREATE UNIQUE INDEX parked_event ON parked(stream_id, stream_version) WHERE stream_id <> '';
            PRAGMA user_version = 1;
            COMMIT;
            """)
    }
}
