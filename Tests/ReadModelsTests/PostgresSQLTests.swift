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
