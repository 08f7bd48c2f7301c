import Foundation
import Logging
import SQLite

/// The read models in one SQLite file (WAL) owned by one process: the writer's connection with
/// automatic checkpoints off (a `WALCheckpointer` runs them off the apply path), pooled read-only
/// readers, and rebuilds into a file beside it (`<path>.rebuild`), attached for the swap.
public final class SQLiteReadModels: ReadModelBackend {
    public let path: String
    let readers: SQLiteReaderPool
    private let checkpointer: WALCheckpointer

    /// Opens or creates the read models at `path` (the directory must exist).
    public init(path: String, readers: Int = 8, logger: Logger = Logger(label: "readmodels")) throws {
        self.path = path
        // The schema first: the checkpointer opens the file too.
        _ = try ReadModelSchema.open(path)
        checkpointer = try WALCheckpointer(path: path, logger: logger)
        self.readers = SQLiteReaderPool(path: path, capacity: readers)
    }

    public var displayName: String { path }
    public var readsBlock: Bool { false }
    public var sharing: (any ReadModelSharing)? { nil }

    public func openWriter() throws -> any ReadModelDatabase {
        let db = try ReadModelSchema.open(path)
        try WALCheckpointer.disableAutomaticCheckpoints(on: db)
        return db
    }

    public func read<T>(_ body: (any ReadModelDatabase) throws -> T) throws -> T {
        try readers.read { try body($0) }
    }

    public func afterWrite(_ writer: any ReadModelDatabase) {
        if let db = writer as? SQLiteConnection { checkpointer.catchUp(on: db) }
    }

    public func makeRebuildTarget() throws -> any ReadModelRebuildTarget {
        try SQLiteRebuildFile(path: path + ".rebuild")
    }

    public func withRebuild<T>(
        _ target: any ReadModelRebuildTarget, attachedTo writer: any ReadModelDatabase, _ body: (String, String) throws -> T
    ) throws -> T {
        try writer.run("ATTACH DATABASE ? AS rebuilt", .text(target.location))
        defer { _ = try? writer.execute("DETACH DATABASE rebuilt") }
        return try body("main", "rebuilt")
    }

    public func close() {
        checkpointer.stop()
        readers.drain()
    }
}

/// A rebuild's file beside the live one.
struct SQLiteRebuildFile: ReadModelRebuildTarget {
    let location: String

    init(path: String) throws {
        location = path
        Self.remove(path)
    }

    func openWriter() throws -> any ReadModelDatabase {
        do {
            let db = try ReadModelSchema.open(location)
            // A throwaway file until the swap: durability comes from the swap's own transaction.
            try db.execute("PRAGMA synchronous=OFF")
            return db
        } catch {
            // A full disk fails the schema after SQLite created the file: leave nothing behind.
            Self.remove(location)
            throw error
        }
    }

    /// Nothing waits: every index is built as rows go in (see `RebuildIndexes`).
    func finishLoading(_ writer: any ReadModelDatabase) throws {}

    func finishWriting(_ writer: any ReadModelDatabase) {
        _ = try? writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    func discard() { Self.remove(location) }

    static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}
