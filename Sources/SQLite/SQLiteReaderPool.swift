import Synchronization

/// Read-only connections to one database, opened on demand and kept for reuse.
///
/// In WAL mode readers never block the writer nor each other, so each concurrent read takes its
/// own connection; at most `capacity` idle ones are kept.
public final class SQLiteReaderPool: Sendable {
    public let path: String
    private let capacity: Int
    private let idle = Mutex<[SQLiteConnection]>([])

    public init(path: String, capacity: Int = 4) {
        self.path = path
        self.capacity = capacity
    }

    /// Runs `body` on an idle reader (opening one when none is idle), then returns it to the pool.
    public func read<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        let connection =
            try idle.withLock { $0.popLast() }
            ?? {
                let connection = try SQLiteConnection(path: path)
                try connection.execute("PRAGMA query_only = 1")
                return connection
            }()
        defer { idle.withLock { if $0.count < capacity { $0.append(connection) } } }
        return try body(connection)
    }

    /// Closes the idle readers (for example before the file is replaced).
    public func drain() {
        idle.withLock { $0.removeAll() }
    }
}
