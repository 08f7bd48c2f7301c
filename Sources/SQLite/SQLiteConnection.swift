import CSQLite
import CSQLiteWALWrites

/// A failed SQLite call: the result code and SQLite's own message, with the statement when there
/// was one.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, `SQLITE_IOERR`, ...).
    public var code: Int32
    public var message: String
    public var sql: String?

    public var description: String {
        sql.map { "SQLite error \(code): \(message) (in: \($0))" } ?? "SQLite error \(code): \(message)"
    }

    /// A constraint failed (UNIQUE, CHECK, NOT NULL): the caller's data, not the database, is wrong.
    public var isConstraint: Bool { code & 0xff == SQLITE_CONSTRAINT }
    /// The disk (or a file size limit) had no room for the write.
    public var isFull: Bool { code & 0xff == SQLITE_FULL }
}

/// A value bound to a statement parameter.
public enum SQLiteValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])
}

/// One connection to a database file.
///
/// Not thread-safe by design: SQLite connections are cheap, and each user (the store's single
/// writer, each reader) owns one and uses it from one thread at a time. It is `@unchecked
/// Sendable` so a pool can hand it from thread to thread.
public final class SQLiteConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var statements: [String: SQLiteStatement] = [:]
    private var statementsByAddress: [UnsafeRawPointer: SQLiteStatement] = [:]
    public let path: String

    /// Opens (and creates, unless `readOnly`) the database at `path`. `busyTimeoutMs` is how long a
    /// call waits for another connection's lock before failing with SQLITE_BUSY.
    ///
    /// `gatheringWALWrites`: the connection writes its WAL through a VFS that gathers a commit's
    /// frame writes (a header and a page each) into one `pwrite`, made when the commit syncs the
    /// WAL (`CSQLiteWALWrites`). Safe only while every commit syncs the WAL, so such a connection
    /// is set to `synchronous=FULL` here, and must not be set lower.
    public init(path: String, readOnly: Bool = false, busyTimeoutMs: Int32 = 5000, gatheringWALWrites: Bool = false) throws {
        _ = Self.configured
        var pointer: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let vfs = gatheringWALWrites ? csqlite_wal_write_gathering_vfs() : nil
        let code = sqlite3_open_v2(path, &pointer, flags, vfs)
        guard code == SQLITE_OK, let pointer else {
            let message = pointer.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(pointer)
            throw SQLiteError(code: code, message: message, sql: nil)
        }
        handle = pointer
        self.path = path
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMs)
        if gatheringWALWrites { try execute("PRAGMA synchronous=FULL") }
    }

    /// Writes to WAL files through the gathering VFS since the process began, and the system calls
    /// they took (for tests).
    public static var gatheredWALWrites: (writes: Int64, systemCalls: Int64) {
        var writes: Int64 = 0
        var systemCalls: Int64 = 0
        csqlite_wal_write_counts(&writes, &systemCalls)
        return (writes, systemCalls)
    }

    /// Bytes SQLite reports in use; 0 while its memory statistics are off (they are, see
    /// `configured`).
    public static var memoryInUse: Int64 { sqlite3_memory_used() }

    /// Process-wide settings, applied once before the first connection opens.
    private static let configured: Void = { _ = csqlite_disable_memory_statistics() }()

    deinit {
        statementsByAddress.removeAll()
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    /// What SQLite's own structural check found.
    public enum IntegrityCheck: Sendable, Equatable {
        case ok
        /// The check's messages (at most the number asked for).
        case problems([String])
        /// The check did not finish within its time budget.
        case outOfTime
    }

    /// Runs `PRAGMA quick_check` (`full`: `integrity_check`, which also compares every index with
    /// its table), reporting at most `maxProblems`. With a `budget`, a progress handler
    /// interrupts it when the time is up (a large database at start must not hold the service).
    public func integrityCheck(full: Bool, maxProblems: Int = 20, budget: Duration? = nil) throws -> IntegrityCheck {
        final class Deadline {
            let at: ContinuousClock.Instant
            init(_ at: ContinuousClock.Instant) { self.at = at }
        }
        let deadline = budget.map { Deadline(.now + $0) }
        if let deadline {
            sqlite3_progress_handler(
                handle, 10_000,
                { context in
                    guard let context else { return 0 }
                    return ContinuousClock.now >= Unmanaged<Deadline>.fromOpaque(context).takeUnretainedValue().at ? 1 : 0
                }, Unmanaged.passUnretained(deadline).toOpaque())
        }
        defer { if deadline != nil { sqlite3_progress_handler(handle, 0, nil, nil) } }
        let messages: [String]
        do {
            messages = try withExtendedLifetime(deadline) {
                try query("PRAGMA \(full ? "integrity_check" : "quick_check")(\(maxProblems))") { $0.text(0) }
            }
        } catch let error as SQLiteError where error.code & 0xFF == SQLITE_INTERRUPT {
            return .outOfTime
        } catch let error as SQLiteError where [SQLITE_CORRUPT, SQLITE_NOTADB].contains(error.code & 0xFF) {
            return .problems([error.message])
        }
        return messages == ["ok"] ? .ok : .problems(messages)
    }

    /// Runs one or more statements that return no rows (schema, pragmas, BEGIN/COMMIT).
    public func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: code, message: message, sql: sql)
        }
    }

    /// A prepared statement for `sql`, compiled once per connection and reused (reset and with
    /// its bindings cleared) on every later call.
    public func statement(_ sql: String) throws -> SQLiteStatement {
        let address = Self.textAddress(sql)
        if let address, let cached = statementsByAddress[address], cached.sql == sql {
            cached.reset()
            return cached
        }
        if let cached = statements[sql] {
            if let address {
                // Texts built at run time come at ever new addresses: keep the map small.
                if statementsByAddress.count >= 256 { statementsByAddress.removeAll(keepingCapacity: true) }
                statementsByAddress[address] = cached
            }
            cached.reset()
            return cached
        }
        var pointer: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, nil)
        guard code == SQLITE_OK, let pointer else { throw error(code, sql: sql) }
        let statement = SQLiteStatement(pointer, connection: self, sql: sql)
        statements[sql] = statement
        if let address { statementsByAddress[address] = statement }
        return statement
    }

    /// Where the bytes of a long SQL text live. Callers pass string literals, whose bytes stay at
    /// one address for the life of the process, so a statement is found by that address and then
    /// confirmed by comparing the text: no hashing of a few hundred bytes (SipHash) per call,
    /// which cost several percent of a rebuild. The comparison keeps it right for any other
    /// string, whose address may be reused by different text. Short texts are stored inline in
    /// the String (no stable address) and go by the hashed dictionary.
    private static func textAddress(_ sql: String) -> UnsafeRawPointer? {
        guard sql.utf8.count > 15 else { return nil }
        return sql.utf8.withContiguousStorageIfAvailable { $0.baseAddress.map(UnsafeRawPointer.init) } ?? nil
    }

    /// Runs a statement that returns no rows; returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: SQLiteValue...) throws -> Int {
        let statement = try statement(sql)
        try statement.bind(values)
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    /// Runs a query and maps each row.
    public func query<T>(_ sql: String, _ values: SQLiteValue..., row: (SQLiteStatement) throws -> T) throws -> [T] {
        let statement = try statement(sql)
        try statement.bind(values)
        var rows: [T] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    /// The first row of a query, mapped, or nil when there is none.
    public func first<T>(_ sql: String, _ values: SQLiteValue..., row: (SQLiteStatement) throws -> T) throws -> T? {
        let statement = try statement(sql)
        try statement.bind(values)
        defer { statement.reset() }
        return try statement.step() ? row(statement) : nil
    }

    /// Runs `body` in a transaction (`BEGIN IMMEDIATE`: the write lock is taken up front, so the
    /// body never fails half-way on a busy lock), committing when it returns and rolling back
    /// when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` inside a savepoint of the current transaction: when it throws, only its own
    /// changes are undone and the transaction goes on.
    public func savepoint<T>(_ name: String = "step", _ body: () throws -> T) throws -> T {
        // Cached statements: a savepoint per row is cheap when nothing is parsed again.
        try run("SAVEPOINT \(name)")
        do {
            let result = try body()
            try run("RELEASE \(name)")
            return result
        } catch {
            _ = try? run("ROLLBACK TO \(name)")
            _ = try? run("RELEASE \(name)")
            throw error
        }
    }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last inserted row.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    func error(_ code: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: code, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }
}

/// A compiled statement owned by its connection.
public final class SQLiteStatement {
    private let pointer: OpaquePointer
    private unowned let connection: SQLiteConnection
    let sql: String

    /// SQLITE_TRANSIENT: SQLite copies bound text and blobs before `bind` returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ pointer: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.pointer = pointer
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(pointer) }

    func reset() {
        sqlite3_reset(pointer)
        sqlite3_clear_bindings(pointer)
    }

    /// Binds `values` to parameters 1...n.
    public func bind(_ values: [SQLiteValue]) throws {
        for (index, value) in values.enumerated() {
            let position = Int32(index + 1)
            let code: Int32
            switch value {
            case .null: code = sqlite3_bind_null(pointer, position)
            case .integer(let number): code = sqlite3_bind_int64(pointer, position, number)
            case .text(let text):
                // With its length: a NUL inside the text is stored, not taken as the end.
                var text = text
                code = text.withUTF8 { utf8 in
                    guard let base = utf8.baseAddress, !utf8.isEmpty else { return sqlite3_bind_text(pointer, position, "", 0, Self.transient) }
                    return sqlite3_bind_text(
                        pointer, position, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(utf8.count), Self.transient)
                }
            case .blob(let bytes):
                code = bytes.withUnsafeBytes { raw in
                    sqlite3_bind_blob(pointer, position, raw.baseAddress, Int32(raw.count), Self.transient)
                }
            }
            guard code == SQLITE_OK else { throw connection.error(code, sql: sql) }
        }
    }

    /// Advances to the next row: true when there is one, false when the statement is done.
    public func step() throws -> Bool {
        let code = sqlite3_step(pointer)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.error(code, sql: sql)
            sqlite3_reset(pointer)
            throw error
        }
    }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(pointer, column) }

    /// Columns of the statement's rows.
    public var columnCount: Int32 { sqlite3_column_count(pointer) }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(pointer, column) == SQLITE_NULL }

    /// A text column, by its length in bytes: a NUL inside it is kept.
    public func text(_ column: Int32) -> String {
        // text first, then bytes: the order SQLite documents for a stable pointer.
        guard let base = sqlite3_column_text(pointer, column) else { return "" }
        let count = Int(sqlite3_column_bytes(pointer, column))
        return String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
    }

    public func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    /// A text or blob column's bytes, exactly as stored.
    public func bytes(_ column: Int32) -> [UInt8] {
        // blob first, then bytes: the order SQLite documents for a stable pointer.
        guard let base = sqlite3_column_blob(pointer, column) else { return [] }
        let count = Int(sqlite3_column_bytes(pointer, column))
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }
}
