import Foundation
import Logging
import SQLite
import TestSupport
import Testing

/// The checkpointer keeps a WAL bounded although the writer never checkpoints itself.
@Suite struct WALCheckpointerTests {
    static func walBytes(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int) ?? 0
    }

    /// A WAL database whose writer never checkpoints, and a checkpointer beside it.
    static func open(_ dir: TemporaryDirectory, interval: Duration) throws -> (String, SQLiteConnection, WALCheckpointer) {
        let path = dir.path + "/db.sqlite"
        let db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE t(b BLOB);")
        try WALCheckpointer.disableAutomaticCheckpoints(on: db)
        return (path, db, try WALCheckpointer(path: path, interval: interval))
    }

    /// Writes `pages` transactions of one 4 KiB row each.
    static func write(_ db: SQLiteConnection, pages: Int) throws {
        let blob = SQLiteValue.blob([UInt8](repeating: 7, count: 4000))
        for _ in 0..<pages { _ = try db.run("INSERT INTO t(b) VALUES (?)", blob) }
    }

    @Test func checkpointsCopyTheWALSoTheWriterStartsItOver() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        // A long interval: this test runs the checkpoints itself.
        let (path, db, checkpointer) = try Self.open(dir, interval: .seconds(3600))

        // With the writer's own checkpoints off, nothing stops the WAL growing...
        try Self.write(db, pages: 1500)
        let grown = Self.walBytes(path)
        #expect(grown > 1500 * 4096)
        // ...until a checkpoint copies all of it (no reader holds an old snapshot).
        checkpointer.checkpoint()
        let after = checkpointer.progress
        #expect(after.lastError == nil)
        #expect(after.walFrames >= 1500)
        #expect(after.copiedFrames == after.walFrames)
        // The next writes start the WAL over from its beginning instead of appending past it.
        try Self.write(db, pages: 100)
        #expect(Self.walBytes(path) == grown)
        checkpointer.checkpoint()
        #expect(checkpointer.progress.walFrames < 400)
        #expect(try db.first("SELECT count(*) FROM t") { $0.int64(0) } == 1600)
        checkpointer.stop()
    }

    @Test func theTimerKeepsTheWALBoundedWhileTheWriterWrites() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (path, db, checkpointer) = try Self.open(dir, interval: .milliseconds(20))
        defer { checkpointer.stop() }
        // 6,000 pages written in 60 slices with pauses the timer can use: without it the WAL
        // would hold them all (24 MB).
        for _ in 0..<60 {
            try Self.write(db, pages: 100)
            try await Task.sleep(for: .milliseconds(30))
        }
        #expect(checkpointer.progress.checkpoints >= 10)
        #expect(Self.walBytes(path) < 3000 * 4096)
    }

    /// A pass that cannot copy every frame (here a reader holds an older snapshot; with a busy
    /// writer, the frames committed while the pass copies) leaves the writer appending past the
    /// end of the WAL for ever after. The writer catching up between its transactions starts it
    /// over.
    @Test func theWriterCatchingUpStartsTheWALOverWhenAPassCouldNotCopyEverything() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (path, db, checkpointer) = try Self.open(dir, interval: .seconds(3600))
        defer { checkpointer.stop() }
        try Self.write(db, pages: 900)
        let reader = try SQLiteConnection(path: path)
        try reader.execute("BEGIN")
        #expect(try reader.first("SELECT count(*) FROM t") { $0.int64(0) } == 900)
        try Self.write(db, pages: 100)
        checkpointer.checkpoint()
        #expect(checkpointer.progress.copiedFrames < checkpointer.progress.walFrames)
        try reader.execute("COMMIT")

        // Not everything was copied, so the writer does not start over: the WAL grows.
        let before = Self.walBytes(path)
        try Self.write(db, pages: 100)
        let grown = Self.walBytes(path)
        #expect(grown > before)
        // Caught up, the next writes go to the WAL's beginning again.
        checkpointer.catchUp(on: db)
        try Self.write(db, pages: 100)
        #expect(Self.walBytes(path) == grown)
        #expect(checkpointer.progress.catchUps == 1)
        // Nothing is due until the next pass.
        checkpointer.catchUp(on: db)
        #expect(checkpointer.progress.catchUps == 1)
        #expect(try db.first("SELECT count(*) FROM t") { $0.int64(0) } == 1200)
    }

    /// A failing checkpoint is said once, not every 250 ms.
    @Test func aFailingCheckpointIsLoggedOnce() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let records = LogRecords()
        let logger = Logger(label: "test") { _ in RecordingLogHandler(records: records) }
        let checkpointer = try WALCheckpointer(path: dir.path + "/db.sqlite", interval: .seconds(3600), logger: logger)
        checkpointer.checkpoint()
        #expect(checkpointer.progress.lastError == nil)
        checkpointer.stop()
        checkpointer.checkpoint()  // no connection any more: fails
        checkpointer.checkpoint()
        #expect(checkpointer.progress.lastError != nil)
        let warnings = records.all.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.message.contains("WAL checkpoint failed") == true)
        #expect(warnings.first?.metadata["sqlite.path"] == dir.path + "/db.sqlite")
    }
}
