public import SQLite

/// One connection to a database holding read models, as the projection and the queries use it:
/// statements with `?` parameters (numbered `?N` where a value repeats), transactions and
/// savepoints. SQLite's connection is one; PostgreSQL's (`PostgresReadModels`) is the other.
///
/// The SQL the read models run is written once, in the dialect both engines accept:
/// `INSERT … ON CONFLICT (…) DO UPDATE/NOTHING`, `CASE` rather than SQLite's two-argument
/// `min`/`max`, `"offset"` quoted. Only the schemas differ, and they live beside each engine.
///
/// Not thread-safe: each user owns one connection and calls it from one thread at a time.
public protocol ReadModelDatabase: AnyObject {
    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws
    /// Runs a statement that returns no rows; returns the number of rows it changed.
    @discardableResult func run(_ sql: String, _ values: [SQLiteValue]) throws -> Int
    /// Runs an `INSERT … VALUES(…)` whose row count the caller does not need. An engine on the
    /// network may hold it and send it with the next ones of the same text as one multi-row
    /// statement, before any other statement and before the transaction or savepoint ends (a
    /// failure then surfaces there). An `ON CONFLICT` clause may follow the values; rows held
    /// together must then not conflict with each other (one statement changes a row once).
    func insert(_ sql: String, _ values: [SQLiteValue]) throws
    /// Runs a query and maps each row.
    func query<T>(_ sql: String, _ values: [SQLiteValue], row: (any ReadModelRow) throws -> T) throws -> [T]
    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T
    /// Runs `body` in a savepoint of the current transaction: when it throws, only its own changes
    /// are undone and the transaction goes on.
    func inSavepoint<T>(_ body: () throws -> T) throws -> T
}

/// One row of a query's result, by column index from 0.
public protocol ReadModelRow {
    func int64(_ column: Int32) -> Int64
    /// Text columns as stored; numbers in decimal.
    func text(_ column: Int32) -> String
    func bytes(_ column: Int32) -> [UInt8]
    func isNull(_ column: Int32) -> Bool
    var columnCount: Int32 { get }
}

/// A failure the database reported. A constraint violation means the event does not fit the
/// models (it is parked); any other failure is the database's own, and the whole batch is retried.
public protocol ReadModelDatabaseFailure: Error {
    var isConstraint: Bool { get }
}

extension ReadModelDatabase {
    @discardableResult
    public func run(_ sql: String, _ values: SQLiteValue...) throws -> Int { try run(sql, values) }

    public func insert(_ sql: String, _ values: SQLiteValue...) throws { try insert(sql, values) }

    public func query<T>(_ sql: String, _ values: SQLiteValue..., row: (any ReadModelRow) throws -> T) throws -> [T] {
        try query(sql, values, row: row)
    }

    /// The first row of a query, mapped, or nil when there is none.
    public func first<T>(_ sql: String, _ values: SQLiteValue..., row: (any ReadModelRow) throws -> T) throws -> T? {
        try query(sql, values, row: row).first
    }
}

extension SQLiteStatement: ReadModelRow {}
extension SQLiteError: ReadModelDatabaseFailure {}

extension SQLiteConnection: ReadModelDatabase {
    @discardableResult
    public func run(_ sql: String, _ values: [SQLiteValue]) throws -> Int {
        let statement = try statement(sql)
        try statement.bind(values)
        while try statement.step() {}
        return changes
    }

    public func query<T>(_ sql: String, _ values: [SQLiteValue], row: (any ReadModelRow) throws -> T) throws -> [T] {
        let statement = try statement(sql)
        try statement.bind(values)
        var rows: [T] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    public func inSavepoint<T>(_ body: () throws -> T) throws -> T { try savepoint("step", body) }

    /// Runs at once: a local statement costs no round trip to save.
    public func insert(_ sql: String, _ values: [SQLiteValue]) throws { try run(sql, values) }
}
