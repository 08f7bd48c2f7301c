import Dispatch
import Logging
import NIOCore
import NIOPosix
import PostgresConnections
import PostgresNIO
import RPCTransportNIO
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
    /// Whether a transaction is open. Its statements must all run in the session that began it: a
    /// new connection is outside the transaction, where each statement would commit on its own
    /// (the rows of an event without its handled position). So a connection lost inside a
    /// transaction fails the rest of it, and only the next transaction connects again.
    private var inTransaction = false
    private var savepoints = 0
    /// Inserts held to go as one statement per text (`insert`): each text, in the order first
    /// held, with its rows' values. Several texts are held at once (an event's transaction row
    /// and its handled position alternate), and all go before any other statement.
    private var held: [(sql: String, rows: [[SQLiteValue]], limit: Int)] = []
    /// Most rows held before they are sent as one `INSERT`.
    static let heldRows = 500
    /// Rows of an insert that can go as `COPY` (`PostgresCopy`) sent once this many are held,
    /// without waiting for the answer (`pending`). Each `COPY` costs the server a fixed setup
    /// that grows with its first thousand rows (PostgreSQL 15 makes a slot per buffered row and
    /// forgets each in a linear search at the end): in chunks of 1,000 that setup was a third
    /// of a rebuild's `COPY` time on the server; in chunks of 5,000 the server's CPU for a
    /// rebuild of 200,000 events fell by about 14%.
    static let heldCopyRows = 5000
    /// `COPY`s sent and not answered yet, chained so the server takes them in order.
    ///
    /// Why: a rebuild's thread used to wait for each `COPY` while the server loaded it, so the
    /// server's work and ours took turns (applying was 1.4 s of a 1.5 s rebuild, of which about
    /// 0.5 s was our CPU). Sent in the background, the rows load on the server while the next
    /// events are applied here. Every other statement waits for them first, so a failure still
    /// comes before any later statement and before the transaction or savepoint ends, as a held
    /// insert's does (`ReadModelDatabase.insert`).
    private var pending: EventLoopFuture<Void>?
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

    /// Whether there is no open connection now (the next call would connect).
    var isConnectionClosed: Bool { connection?.isClosed ?? true }

    func close() {
        discardPending()
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
        guard held[index].rows.count >= held[index].limit else { return }
        if let copy = copy(sql) {
            try sendInBackground(copy, held.remove(at: index).rows)
        } else {
            try sendHeld()
        }
    }

    func query<T>(_ sql: String, _ values: [SQLiteValue], row: (any ReadModelRow) throws -> T) throws -> [T] {
        try sendHeld()
        return try perform(text(sql), Self.bindings(values)).rows.map { try row(PostgresReadModelRow($0)) }
    }

    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        inTransaction = true
        defer { inTransaction = false }
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            held = []
            discardPending()
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
            discardPending()
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
        let data = Self.copyData(rows)
        try perform { connection, logger in Self.copy(data, as: copy, on: connection, logger: logger) }
    }

    /// Sends `rows` with `COPY … FROM STDIN` after the `COPY`s still pending, without waiting.
    private func sendInBackground(_ copy: PostgresCopy, _ rows: [[SQLiteValue]]) throws {
        let connection = try connected()
        let (data, logger) = (Self.copyData(rows), logger)
        guard let previous = pending else {
            pending = Self.copy(data, as: copy, on: connection, logger: logger)
            return
        }
        // After the previous one, and only if it succeeded: its failure has aborted the
        // transaction, and it is the one to report.
        pending = previous.flatMap { Self.copy(data, as: copy, on: connection, logger: logger) }
    }

    private static func copyData(_ rows: [[SQLiteValue]]) -> ByteBuffer {
        var data = ByteBuffer()
        data.reserveCapacity(rows.count * 96)
        PostgresCopy.encode(rows, into: &data)
        return data
    }

    /// The `COPY` runs as a task on the connection's own loop: on the global executor it could
    /// wait behind the very threads that block on it (where that is Swift's small cooperative
    /// pool, as in tests, two blocked callers would leave it no thread).
    private static func copy(_ data: ByteBuffer, as copy: PostgresCopy, on connection: PostgresConnection, logger: Logger) -> EventLoopFuture<Void> {
        let done = connection.eventLoop.makePromise(of: Void.self)
        Task(executorPreference: EventLoopTasks.executor(for: connection.eventLoop)) {
            do {
                try await connection.copyFrom(table: copy.table, columns: copy.columns, logger: logger) { writer in
                    try await writer.write(data)
                }
                done.succeed()
            } catch {
                done.fail(error)
            }
        }
        return done.futureResult
    }

    /// Waits for the pending `COPY`s; throws the first one's failure.
    private func awaitPending() throws {
        guard let future = pending else { return }
        pending = nil
        let connection = self.connection
        do {
            try wait(future)
        } catch {
            throw failure(error, of: connection)
        }
    }

    /// Waits for the pending `COPY`s, if any, ignoring how they ended: what they did is being
    /// rolled back.
    private func discardPending() {
        _ = try? awaitPending()
    }

    private func perform<T: Sendable>(_ call: (PostgresConnection, Logger) -> EventLoopFuture<T>) throws -> T {
        try awaitPending()
        let connection = try connected()
        do {
            return try wait(call(connection, logger))
        } catch {
            throw failure(error, of: connection)
        }
    }

    /// `error` as the caller sees it. A statement the server refused leaves the connection fine;
    /// any other failure (of the connection itself, or a wait that ran out) drops it, and the
    /// next call connects again.
    private func failure(_ error: any Error, of connection: PostgresConnection?) -> PostgresReadModelFailure {
        if let error = error as? PSQLError, error.serverInfo?[.sqlState] != nil { return PostgresReadModelFailure(error) }
        if let connection, connection === self.connection {
            self.connection = nil
            Self.closeInBackground(connection)
        }
        return PostgresReadModelFailure(error)
    }

    private func connected() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        guard !inTransaction else {
            throw PostgresReadModelFailure(message: "the connection to PostgreSQL was lost inside a transaction, which is rolled back with it")
        }
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
