import Dispatch
import Logging
import NIOCore
import NIOPosix
import PostgresConnections
import PostgresNIO
import ReadModels
import SQLite
import Synchronization
import WallTime

/// One PostgreSQL connection used the way the read models use SQLite: each call blocks its
/// thread until the server answers. Only ever called from threads of our own (the store's writer
/// queue, Dispatch threads for reads), never from an event loop or the cooperative pool: the
/// waiting is on NIO futures, which complete on the connection's event loop.
///
/// It connects on first use and again after any failure of the connection itself; every wait is
/// bounded (`callTimeout`), so a server that stops answering fails the call instead of hanging
/// the writer. Inside a transaction a lost connection fails the transaction (its changes are
/// gone with the session), and the caller's retry starts a new one.
final class BlockingPostgresConnection: ReadModelDatabase, @unchecked Sendable {
    struct Settings: Sendable {
        var location: PostgresLocation
        /// The schema every unqualified name is looked up in (`search_path`).
        var schema: String
        /// The longest a call waits for its answer, less a second: the location's
        /// `statement_timeout` (the server gives up on a statement after it).
        var callTimeout: Duration { location.statementTimeout }
        /// Run once after connecting (for example `SET synchronous_commit = off`).
        var onConnect: [String] = []
    }

    let settings: Settings
    private let logger: Logger
    private var connection: PostgresConnection?
    private var savepoints = 0
    /// Inserts held to go as one statement per text (`insert`): each text, in the order first
    /// held, with its rows' values. Several texts are held at once (an event's transaction row
    /// and its handled position alternate), and all go before any other statement.
    private var held: [(sql: String, rows: [[SQLiteValue]], limit: Int)] = []
    /// Most rows held before they are sent as one `INSERT`.
    static let heldRows = 500
    /// Most rows held before they are sent as one `COPY` (`PostgresCopy`).
    static let heldCopyRows = 5000
    /// Translated texts by the SQLite-style text they came from.
    private var translated: [String: String] = [:]
    /// The `COPY` each held insert text can go as, if any, by its text.
    private var copies: [String: PostgresCopy?] = [:]

    /// The loops the connections' I/O runs on: loops of their own, so that a thread blocked on a
    /// call can never be the loop that call needs (a binary may run its tasks on NIO's shared
    /// loops).
    static let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    deinit {
        if let connection { Self.closeInBackground(connection) }
    }

    /// Closes `connection` without waiting; it stays referenced until closed (postgres-nio
    /// asserts that a connection is closed before it goes away).
    static func closeInBackground(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in _ = connection }
    }

    func close() {
        if let connection { _ = try? wait(connection.close()) }
        connection = nil
    }

    // MARK: ReadModelDatabase

    func execute(_ sql: String) throws {
        try sendHeld()
        for statement in PostgresSQL.statements(sql) { _ = try perform(statement, PostgresBindings()) }
    }

    @discardableResult
    func run(_ sql: String, _ values: [SQLiteValue]) throws -> Int {
        try sendHeld()
        return try perform(text(sql), Self.bindings(values)).metadata.rows ?? 0
    }

    /// Held, and sent with the next inserts of the same text as one multi-row INSERT (up to
    /// `heldRows`) or COPY (up to `heldCopyRows`): a rebuild's transaction rows cost one round
    /// trip per few thousand, not each.
    func insert(_ sql: String, _ values: [SQLiteValue]) throws {
        guard let index = held.firstIndex(where: { $0.sql == sql }) else {
            held.append((sql, [values], copy(sql) == nil ? Self.heldRows : Self.heldCopyRows))
            return
        }
        held[index].rows.append(values)
        if held[index].rows.count >= held[index].limit { try sendHeld() }
    }

    func query<T>(_ sql: String, _ values: [SQLiteValue], row: (any ReadModelRow) throws -> T) throws -> [T] {
        try sendHeld()
        return try perform(text(sql), Self.bindings(values)).rows.map { try row(PostgresReadModelRow($0)) }
    }

    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            held = []
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Sends the held inserts, one statement per text.
    private func sendHeld() throws {
        guard !held.isEmpty else { return }
        let sending = held
        held = []
        for (sql, rows, _) in sending {
            if rows.count >= PostgresCopy.minimumRows, let copy = copy(sql) {
                try perform(copy, rows)
                continue
            }
            for start in stride(from: 0, to: rows.count, by: Self.heldRows) {
                try sendAsInsert(sql, Array(rows[start..<min(start + Self.heldRows, rows.count)]))
            }
        }
    }

    private func sendAsInsert(_ sql: String, _ rows: [[SQLiteValue]]) throws {
        guard let statement = PostgresSQL.multiRowInsert(sql, rows: rows.count) else {
            for row in rows { _ = try perform(text(sql), Self.bindings(row)) }
            return
        }
        _ = try perform(statement, Self.bindings(rows.flatMap { $0 }))
    }

    private func copy(_ sql: String) -> PostgresCopy? {
        if let known = copies[sql] { return known }
        let copy = PostgresCopy(insert: sql)
        if copies.count > 512 { copies = [:] }
        copies[sql] = copy
        return copy
    }

    func inSavepoint<T>(_ body: () throws -> T) throws -> T {
        savepoints += 1
        let name = "step\(savepoints)"
        defer { savepoints -= 1 }
        try execute("SAVEPOINT \(name)")
        do {
            let result = try body()
            try execute("RELEASE SAVEPOINT \(name)")
            return result
        } catch {
            held = []  // what the body held: the savepoint's own, undone with it
            try? execute("ROLLBACK TO SAVEPOINT \(name)")
            try? execute("RELEASE SAVEPOINT \(name)")
            throw error
        }
    }

    // MARK: Connection

    private func text(_ sql: String) -> String {
        if let cached = translated[sql] { return cached }
        let text = PostgresSQL.numbered(sql)
        if translated.count > 512 { translated = [:] }
        translated[sql] = text
        return text
    }

    private func perform(_ sql: String, _ binds: PostgresBindings) throws -> PostgresQueryResult {
        try perform { connection, logger in connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) }
    }

    /// Sends `rows` with `COPY … FROM STDIN`, in one buffer.
    private func perform(_ copy: PostgresCopy, _ rows: [[SQLiteValue]]) throws {
        var data = ByteBuffer()
        data.reserveCapacity(rows.count * 96)
        PostgresCopy.encode(rows, into: &data)
        try perform { [data] connection, logger in
            connection.eventLoop.makeFutureWithTask {
                try await connection.copyFrom(table: copy.table, columns: copy.columns, logger: logger) { writer in
                    try await writer.write(data)
                }
            }
        }
    }

    private func perform<T: Sendable>(_ call: (PostgresConnection, Logger) -> EventLoopFuture<T>) throws -> T {
        let connection = try connected()
        do {
            return try wait(call(connection, logger))
        } catch let error as PSQLError where error.serverInfo?[.sqlState] != nil {
            // The server refused the statement; the connection is fine.
            throw PostgresReadModelFailure(error)
        } catch {
            // The connection itself failed (or the wait ran out): start again on the next call.
            self.connection = nil
            Self.closeInBackground(connection)
            throw PostgresReadModelFailure(error)
        }
    }

    private func connected() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        do {
            let eventLoop = Self.eventLoops.any()
            let configuration = try settings.location.connectionConfiguration(connectTimeout: min(settings.callTimeout, .seconds(5)))
            let connection = try wait(PostgresConnection.connect(on: eventLoop, configuration: configuration, id: 1, logger: logger))
            // statement_timeout comes with the connection (PostgresLocation's startup parameters).
            do {
                for setup in ["SET search_path TO \"\(settings.schema)\""] + settings.onConnect {
                    _ = try wait(connection.query(PostgresQuery(unsafeSQL: setup), logger: logger))
                }
            } catch {
                Self.closeInBackground(connection)
                throw error
            }
            self.connection = connection
            return connection
        } catch {
            throw PostgresReadModelFailure(error, context: "cannot reach PostgreSQL at \(settings.location.redacted)")
        }
    }

    /// Waits for `future` at most `callTimeout` and a second.
    private func wait<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<T, any Error>?>(nil)
        future.whenComplete { result in
            outcome.withLock { $0 = result }
            done.signal()
        }
        let seconds = Double(settings.callTimeout.wholeMilliseconds) / 1000 + 1
        guard done.wait(timeout: .now() + seconds) == .success, let result = outcome.withLock({ $0 }) else {
            throw PostgresReadModelFailure(message: "PostgreSQL did not answer within \(seconds) s")
        }
        return try result.get()
    }

    static func bindings(_ values: [SQLiteValue]) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: binds.appendNull()
            case .integer(let number): binds.append(number)
            case .text(let text): binds.append(text)
            case .blob(let bytes): binds.append(ByteBuffer(bytes: bytes))
            }
        }
        return binds
    }
}

/// A row of a PostgreSQL result, read as the read models read SQLite's.
struct PostgresReadModelRow: ReadModelRow {
    let cells: PostgresRandomAccessRow

    init(_ row: PostgresRow) { cells = row.makeRandomAccess() }

    var columnCount: Int32 { Int32(cells.count) }

    func int64(_ column: Int32) -> Int64 { (try? cells[Int(column)].decode(Int64.self)) ?? 0 }

    func text(_ column: Int32) -> String {
        let cell = cells[Int(column)]
        if cell.bytes == nil { return "" }
        if let text = try? cell.decode(String.self) { return text }
        if let number = try? cell.decode(Int64.self) { return String(number) }
        if let bytes = try? cell.decode(ByteBuffer.self) { return String(decoding: bytes.readableBytesView, as: UTF8.self) }
        return ""
    }

    func bytes(_ column: Int32) -> [UInt8] {
        guard let buffer = cells[Int(column)].bytes else { return [] }
        return Array(buffer.readableBytesView)
    }

    func isNull(_ column: Int32) -> Bool { cells[Int(column)].bytes == nil }
}

/// A failure of the database or of the connection to it, as one line without credentials.
struct PostgresReadModelFailure: ReadModelDatabaseFailure, CustomStringConvertible {
    var description: String
    /// SQLSTATE class 23: integrity constraint violation.
    var isConstraint: Bool

    init(_ error: any Error, context: String? = nil) {
        if let failure = error as? PostgresReadModelFailure {
            self = failure
            return
        }
        let described = PostgresErrors.describe(error)
        description = context.map { "\($0): \(described)" } ?? described
        isConstraint = (error as? PSQLError)?.serverInfo?[.sqlState]?.hasPrefix("23") ?? false
    }

    init(message: String) {
        description = message
        isConstraint = false
    }
}
