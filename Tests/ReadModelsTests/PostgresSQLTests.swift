import Foundation
import Logging
import NIOCore
import PostgresConnections
import ReadModels
import SQLite
import Testing

@testable import PostgresReadModels

/// The one SQL of the read models, as PostgreSQL takes it.
@Suite struct PostgresSQLTests {
    @Test func parametersAreNumberedTheWaySQLiteNumbersThem() {
        #expect(PostgresSQL.numbered("SELECT a FROM t WHERE b = ? AND c > ?") == "SELECT a FROM t WHERE b = $1 AND c > $2")
        #expect(PostgresSQL.numbered("VALUES(?1, ?2, ?1, ?3, ?)") == "VALUES($1, $2, $1, $3, $4)")
        #expect(PostgresSQL.numbered("SELECT '?' || \"a?\" FROM t WHERE x = ?") == "SELECT '?' || \"a?\" FROM t WHERE x = $1")
    }

    @Test func heldInsertsGoAsOneMultiRowStatement() {
        #expect(
            PostgresSQL.multiRowInsert("INSERT INTO t(a, b) VALUES(?, ?)", rows: 3)
                == "INSERT INTO t(a, b) VALUES ($1, $2), ($3, $4), ($5, $6)")
        #expect(PostgresSQL.multiRowInsert("INSERT INTO t(a) VALUES(?)\n", rows: 1) == "INSERT INTO t(a) VALUES ($1)")
        #expect(PostgresSQL.multiRowInsert("INSERT INTO t(a, b) VALUES(?, 'x')", rows: 2) == nil, "only plain parameters")
        #expect(
            PostgresSQL.multiRowInsert("INSERT INTO t(a) VALUES(?)\nON CONFLICT(a) DO UPDATE SET a = excluded.a", rows: 2)
                == "INSERT INTO t(a) VALUES ($1), ($2) ON CONFLICT(a) DO UPDATE SET a = excluded.a")
        #expect(PostgresSQL.multiRowInsert("INSERT INTO t(a) VALUES(?) RETURNING a", rows: 2) == nil, "nothing else after the values")
        #expect(PostgresSQL.multiRowInsert("INSERT INTO t(a) VALUES(?) ON CONFLICT(a) DO UPDATE SET a = ?", rows: 2) == nil)
        #expect(PostgresSQL.multiRowInsert("UPDATE t SET a = ?", rows: 2) == nil)
    }

    @Test func plainInsertsOfEveryColumnCanGoAsCopy() {
        let plain = PostgresCopy(insert: "INSERT INTO t(a, B) VALUES(?, ?)")
        #expect(plain?.table == "t" && plain?.columns == ["a", "b"])
        let quoted = PostgresCopy(insert: "INSERT INTO parked(\"offset\", x)\n  VALUES (?,?)\n")
        #expect(quoted?.table == "parked" && quoted?.columns == ["offset", "x"])
        #expect(PostgresCopy(insert: "INSERT INTO t(a, b) VALUES(?, 'x')") == nil, "a literal")
        #expect(PostgresCopy(insert: "INSERT INTO t(a, b) VALUES(?)") == nil, "fewer values than columns")
        #expect(PostgresCopy(insert: "INSERT INTO t(a) VALUES(?) ON CONFLICT DO NOTHING") == nil, "COPY has no ON CONFLICT")
        #expect(PostgresCopy(insert: "INSERT INTO s.t(a) VALUES(?)") == nil, "qualified")
        #expect(PostgresCopy(insert: "INSERT INTO t VALUES(?)") == nil, "no columns")
        #expect(PostgresCopy(insert: "UPDATE t SET a = ?") == nil)
    }

    @Test func copyTextEscapesWhatTheFormatGivesMeaningTo() {
        var buffer = ByteBuffer()
        PostgresCopy.encode(
            [[.text("a\tb\\c\nd\re"), .integer(-42), .null, .blob([0x00, 0xab])], [.text("plain ü"), .integer(0), .text(""), .text("\\N")]],
            into: &buffer)
        #expect(String(buffer: buffer) == "a\\tb\\\\c\\nd\\re\t-42\t\\N\t\\\\x00ab\nplain ü\t0\t\t\\\\N\n")
    }

    /// Numbers are written digit by digit: exactly what `String(number)` writes, at the edges too.
    @Test func copyTextWritesEveryNumberAsStringDoes() {
        var numbers: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1]
        var power: Int64 = 1
        for _ in 0..<18 {
            power *= 10
            numbers += [power, power - 1, -power, -(power - 1)]
        }
        for number in numbers {
            var buffer = ByteBuffer()
            PostgresCopy.encode([[.integer(number), .integer(number)]], into: &buffer)
            #expect(String(buffer: buffer) == "\(number)\t\(number)\n")
        }
    }

    /// Held inserts of many rows go as COPY: what comes back is what went in, however odd the
    /// text, and a row that breaks a constraint fails the statement as a constraint failure (so
    /// the projection retries the batch event by event), leaving the connection usable.
    /// Runs `body` with a connection whose schema holds a fresh table `t` made by `columns`, when
    /// the tests have a PostgreSQL (JFRAME_TEST_POSTGRES_URL); drops the schema after.
    static func withScratchTable(_ columns: String, _ body: (BlockingPostgresConnection) throws -> Void) throws {
        guard let url = ProcessInfo.processInfo.environment["JFRAME_TEST_POSTGRES_URL"], !url.isEmpty else { return }
        let schema = ReadModelKind.uniqueName("_copy")
        let db = BlockingPostgresConnection(settings: .init(location: try PostgresLocation(url: url), schema: schema), logger: Logger(label: "test"))
        defer {
            _ = try? db.execute("DROP SCHEMA \"\(schema)\" CASCADE")
            db.close()
        }
        try db.execute("CREATE SCHEMA \"\(schema)\"; CREATE TABLE \"\(schema)\".t(\(columns))")
        try body(db)
    }

    @Test func heldRowsRoundTripThroughCopyAndAConflictIsAConstraintFailure() throws {
        try Self.withScratchTable("id BIGINT PRIMARY KEY, name TEXT, data BYTEA") { db in
            let odd = ["tab\there", "line\nbreak", "back\\slash", "\\N", "cr\r", "", "ünïcödé ✓"]
            let rows: [[SQLiteValue]] = (0..<200).map { i in
                [.integer(Int64(i)), i % 10 == 9 ? .null : .text(odd[i % odd.count]), .blob([UInt8(i), 0])]
            }
            try db.transaction { for row in rows { try db.insert("INSERT INTO t(id, name, data) VALUES(?, ?, ?)", row) } }
            let back = try db.query("SELECT id, name, data FROM t ORDER BY id", []) { row -> [SQLiteValue] in
                [.integer(row.int64(0)), row.isNull(1) ? .null : .text(row.text(1)), .blob(row.bytes(2))]
            }
            #expect(back == rows)

            #expect {
                try db.transaction {
                    for id in [1000, 1001] + Array(1002..<1100) + [1000] { try db.insert("INSERT INTO t(id) VALUES(?)", .integer(Int64(id))) }
                }
            } throws: { ($0 as? any ReadModelDatabaseFailure)?.isConstraint == true }
            #expect(try db.first("SELECT count(*) FROM t") { $0.int64(0) } == 200)
        }
    }

    /// Past `heldCopyRows` held rows go as COPYs sent without waiting, and the next statement
    /// waits for them: it sees every row; a conflict in any of them fails the transaction as a
    /// constraint failure, leaves nothing of it, and leaves the connection usable; a savepoint's
    /// rollback undoes the ones sent inside it.
    @Test func copiesSentInTheBackgroundComeBeforeTheNextStatement() throws {
        try Self.withScratchTable("id BIGINT PRIMARY KEY") { db in
            func insert(_ ids: some Sequence<Int>) throws { for id in ids { try db.insert("INSERT INTO t(id) VALUES(?)", .integer(Int64(id))) } }
            func count() throws -> Int64? { try db.first("SELECT count(*) FROM t") { $0.int64(0) } }
            let n = BlockingPostgresConnection.heldCopyRows * 3 + 17
            try db.transaction {
                try insert(0..<n)
                #expect(try count() == Int64(n))
            }
            // A conflict in the first chunk sent, with more queued behind it; and one in the last.
            for ids in [[5] + Array(n..<(n + 2500)), Array(n..<(n + 2500)) + [7]] {
                #expect { try db.transaction { try insert(ids) } } throws: { ($0 as? any ReadModelDatabaseFailure)?.isConstraint == true }
                #expect(try count() == Int64(n))
            }
            struct Undo: Error {}
            try db.transaction {
                #expect(throws: Undo.self) {
                    try db.inSavepoint {
                        try insert((n + 10_000)..<(n + 12_500))
                        throw Undo()
                    }
                }
                try insert([-1])
            }
            #expect(try count() == Int64(n + 1))
        }
    }

    /// A connection lost between two statements of a transaction fails the transaction: the
    /// second statement must not run on a new connection, outside the transaction, where it would
    /// commit on its own while the first is rolled back with the lost session.
    @Test func aConnectionLostInsideATransactionFailsTheRestOfIt() throws {
        try Self.withScratchTable("id BIGINT PRIMARY KEY") { (db: BlockingPostgresConnection) throws in
            let other = BlockingPostgresConnection(settings: db.settings, logger: Logger(label: "test"))
            defer { other.close() }
            #expect(throws: (any Error).self) {
                try db.transaction {
                    try db.run("INSERT INTO t(id) VALUES(1)")
                    let pid = try db.first("SELECT pg_backend_pid()") { $0.int64(0) } ?? 0
                    try other.execute("SELECT pg_terminate_backend(\(pid))")
                    // Until the client has seen the session close, as a quiet moment would let it.
                    let deadline = ContinuousClock.now + .seconds(5)
                    while !db.isConnectionClosed, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
                    try db.run("INSERT INTO t(id) VALUES(2)")
                }
            }
            #expect(try db.first("SELECT count(*) FROM t") { $0.int64(0) } == 0)
        }
    }

    @Test func scriptsSplitAtSemicolonsOutsideQuotes() {
        #expect(PostgresSQL.statements("BEGIN; UPDATE t SET e = 'a;b';\n\n COMMIT;") == ["BEGIN", "UPDATE t SET e = 'a;b'", "COMMIT"])
        #expect(PostgresSQL.statements("  ;  ").isEmpty)
    }

    @Test(arguments: ["readmodels", "t1_x", String(repeating: "a", count: 40)])
    func goodSchemaNames(_ name: String) { #expect(PostgresSQL.isValidSchema(name)) }

    @Test(arguments: ["", "Read", "1a", "a-b", "a;drop", "a\"b", String(repeating: "a", count: 41)])
    func badSchemaNames(_ name: String) { #expect(!PostgresSQL.isValidSchema(name)) }

    @Test func announcementsCarryTheWatermarkAndTheAccountsWhenTheyFit() {
        #expect(PostgresSharing.payload(42, ["a", "b"]) == "42 a b")
        #expect(PostgresSharing.payload(42, nil) == "42")
        #expect(PostgresSharing.payload(42, ["with space"]) == "42", "an id that cannot be listed: every account may have changed")
        #expect(PostgresSharing.payload(7, Array(repeating: String(repeating: "x", count: 100), count: 50)) == "7")
        #expect(PostgresSharing.parse("42 a b").map { [String($0.0)] + ($0.1 ?? []) } == ["42", "a", "b"])
        #expect(PostgresSharing.parse("42").map { $0.1 == nil } == true)
        #expect(PostgresSharing.parse("x") == nil)
    }
}
