/// Where a `ReadModelStore` keeps its models: the writer's connection, readers for queries, the
/// place a rebuild writes into before the swap, and — when other processes write the same
/// models — how writers take turns and hear of each other.
///
/// Two implementations: `SQLiteReadModels` (a file owned by one process, the default) and
/// `PostgresReadModels` (one schema shared by several query-service replicas).
public protocol ReadModelBackend: Sendable {
    /// Where the models are, as logs and errors show it (never with a password).
    var displayName: String { get }
    /// Opens the writer's connection, with the schema created or migrated.
    func openWriter() throws -> any ReadModelDatabase
    /// Runs `body` on a reader connection.
    func read<T>(_ body: (any ReadModelDatabase) throws -> T) throws -> T
    /// True when a read waits on the network (never run it on an event loop or the cooperative
    /// pool): `ReadModelStore.reading` then always runs it on a Dispatch thread.
    var readsBlock: Bool { get }
    /// Set when other processes write the same models.
    var sharing: (any ReadModelSharing)? { get }
    /// Called on the writer's thread after each write (SQLite: the WAL checkpoint catch-up).
    func afterWrite(_ writer: any ReadModelDatabase)
    /// Opens an empty place for a rebuild (an earlier unfinished one is removed).
    func makeRebuildTarget() throws -> any ReadModelRebuildTarget
    /// Runs `body` on `writer` with the rebuild's tables reachable; `body` gets how to name the
    /// live tables' and the rebuild's tables' schemas in SQL (`main`/`rebuilt` for SQLite).
    func withRebuild<T>(
        _ target: any ReadModelRebuildTarget, attachedTo writer: any ReadModelDatabase, _ body: (_ live: String, _ rebuilt: String) throws -> T
    ) throws -> T
    /// The SQL that puts the rebuild's `table` in place of the live one, inside the swap's
    /// transaction (`live`, `rebuilt` as `withRebuild` names them). By default its rows are
    /// copied over.
    func replaceTable(_ table: String, live: String, rebuilt: String) -> String
    /// Closes the readers and anything else it runs.
    func close()
}

extension ReadModelBackend {
    public func replaceTable(_ table: String, live: String, rebuilt: String) -> String {
        "DELETE FROM \(live).\(table); INSERT INTO \(live).\(table) SELECT * FROM \(rebuilt).\(table);"
    }
}

/// The fresh models a rebuild writes into before the swap.
public protocol ReadModelRebuildTarget: Sendable {
    /// Where it is, for messages.
    var location: String { get }
    /// Opens its writer connection (schema created, durability relaxed: the swap's own
    /// transaction is what must be durable).
    func openWriter() throws -> any ReadModelDatabase
    /// Builds what it put off while the history loaded (`RebuildIndexes`); called once the bulk
    /// of the history is in and again before the swap, when it finds nothing left to do.
    func finishLoading(_ writer: any ReadModelDatabase) throws
    /// Called once the rebuild's writer is done, before the swap reads the tables.
    func finishWriting(_ writer: any ReadModelDatabase)
    /// Removes it.
    func discard()
}

/// How writers in several processes share one set of read models.
///
/// Every write transaction starts with `takeTurn` (no other writer is inside one until it
/// commits), then reads the bookkeeping back (others may have moved it), and ends with
/// `announce` (delivered to the others when it commits). The others' announcements arrive
/// through `follow`.
public protocol ReadModelSharing: Sendable {
    func takeTurn(_ writer: any ReadModelDatabase) throws
    /// Tells the other processes that everything up to `handledThrough` is handled, and which
    /// event streams had events applied (nil: any may have).
    func announce(_ writer: any ReadModelDatabase, handledThrough: Int64, streams: [String]?) throws
    /// Calls `heard` with each announcement of any writer (this one's included), and with the
    /// stored watermark each time it (re)connects, until the task is cancelled.
    func follow(_ heard: @escaping @Sendable (_ handledThrough: Int64, _ streams: [String]?) -> Void) async
}
