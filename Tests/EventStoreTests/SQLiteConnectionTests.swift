import SQLite
import TestSupport
import Testing

@Suite struct SQLiteConnectionTests {
    /// Statements are found by where their text lives, then confirmed by the text: texts built
    /// at run time (whose addresses get reused for other texts) must still get their own.
    @Test func everyTextGetsItsOwnStatementWhereverItLives() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let db = try SQLiteConnection(path: dir.path + "/db.sqlite")
        for round in 0..<3 {
            for value in 0..<400 {
                let sql = "SELECT \(value) + \(round) AS a_result_named_long_enough"
                #expect(try db.first(sql) { $0.int64(0) } == Int64(value + round))
            }
        }
        let literal = try db.first("SELECT 'a literal, looked up by its address' AS text") { $0.text(0) }
        #expect(literal == "a literal, looked up by its address")
        #expect(try db.first("SELECT 'a literal, looked up by its address' AS text") { $0.text(0) } == literal)
    }

    /// SQLite's memory statistics (a global mutex per allocation) are off.
    @Test func memoryStatisticsAreOff() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let db = try SQLiteConnection(path: dir.path + "/db.sqlite")
        try db.execute("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(100000));")
        #expect(SQLiteConnection.memoryInUse == 0)
    }
}
