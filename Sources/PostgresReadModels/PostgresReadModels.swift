public import Logging
import NIOCore
import NIOPosix
public import PostgresConnections
import PostgresNIO
public import ReadModels
import Synchronization

/// The read models in one PostgreSQL schema shared by several query-service replicas.
///
/// - Every replica writes the partitions it owns in its consumer group; writers of all replicas
///   take turns on one transaction-scoped advisory lock (`ReadModelSharing`), so the projection's
///   rules (offsets, stream versions, handled positions in the batch's transaction) hold across
///   processes exactly as within one. A zombie member that still applies a batch after its
///   partition moved waits its turn, reads the moved offset and skips what was applied.
/// - The handled watermark is announced with `pg_notify` in the writing transaction (delivered on
///   commit) and heard by every replica on a `LISTEN` connection, so read-your-writes works
///   whichever replica is asked, with no polling.
/// - A rebuild writes into the shadow schema `<schema>_rebuild` (one rebuild at a time across
///   replicas: a session advisory lock) and the swap moves its tables into the live schema in
///   one transaction; every replica answers from the old tables until it commits.
public final class PostgresReadModels: ReadModelBackend {
    public struct Options: Sendable {
        /// The schema of the live tables (the URL's `schema` parameter wins).
        public var schema = "readmodels"
        /// Idle reader connections kept.
        public var readers = 8
        public init() {}
    }

    public let location: PostgresLocation
    public let schema: String
    private let options: Options
    private let logger: Logger
    private let idleReaders = Mutex<[BlockingPostgresConnection]>([])
    private let sharedWriters: PostgresSharing

    /// Checks `url` and the schema name, reaches the database (one line when it cannot), and
    /// creates or migrates the schema.
    public init(url: String, options: Options = Options(), logger: Logger = Logger(label: "readmodels")) throws {
        let location = try PostgresLocation(url: url)
        let schema = location.schema ?? options.schema
        guard PostgresSQL.isValidSchema(schema) else {
            throw PostgresConnectionError.invalid(
                "the read models' schema must be lower-case letters, digits and _ (at most 40, starting with a letter), not '\(schema)'")
        }
        self.location = location
        self.schema = schema
        self.options = options
        self.logger = logger
        sharedWriters = PostgresSharing(location: location, schema: schema, logger: logger)
        let setup = BlockingPostgresConnection(settings: settings(schema), logger: logger)
        defer { setup.close() }
        do {
            try PostgresReadModelSchema.migrate(setup, schema: schema, logger: logger)
        } catch {
            throw PostgresConnectionError.unavailable("cannot open the read models at \(location.redacted): \(error)")
        }
    }

    func settings(_ schema: String, onConnect: [String] = []) -> BlockingPostgresConnection.Settings {
        BlockingPostgresConnection.Settings(location: location, schema: schema, onConnect: onConnect)
    }

    public var displayName: String { "\(location.redacted) (schema \(schema))" }
    public var readsBlock: Bool { true }
    public var sharing: (any ReadModelSharing)? { sharedWriters }

    /// The writer commits with `synchronous_commit` off, the trade the SQLite file makes with
    /// `synchronous=NORMAL`: a crash of the database may lose its last commits, but the
    /// partitions' offsets and the handled positions go back with them (one transaction), so the
    /// events are applied again; nothing is applied twice. In exchange a batch does not wait for
    /// a WAL flush, which on a slow disk was most of the read models' lag.
    public func openWriter() throws -> any ReadModelDatabase {
        BlockingPostgresConnection(settings: settings(schema, onConnect: ["SET synchronous_commit = off"]), logger: logger)
    }

    public func read<T>(_ body: (any ReadModelDatabase) throws -> T) throws -> T {
        let reader = idleReaders.withLock { $0.popLast() } ?? BlockingPostgresConnection(settings: settings(schema), logger: logger)
        defer { idleReaders.withLock { if $0.count < options.readers { $0.append(reader) } } }
        return try body(reader)
    }

    public func afterWrite(_ writer: any ReadModelDatabase) {}

    public func makeRebuildTarget() throws -> any ReadModelRebuildTarget {
        try PostgresRebuildSchema(backend: self)
    }

    public func withRebuild<T>(
        _ target: any ReadModelRebuildTarget, attachedTo writer: any ReadModelDatabase, _ body: (String, String) throws -> T
    ) throws -> T {
        try body("\"\(schema)\"", "\"\(target.location)\"")
    }

    /// The rebuilt table itself moves into the live schema, its indexes with it: a catalog
    /// change, where copying 200,000 rows over took most of a second of the swap. The live
    /// table's readers wait for the swap's commit (a lock) instead of reading the old rows
    /// meanwhile; every read is one statement on one table, so none can deadlock with it.
    public func replaceTable(_ table: String, live: String, rebuilt: String) -> String {
        "DROP TABLE \(live).\(table); ALTER TABLE \(rebuilt).\(table) SET SCHEMA \(live);"
    }

    public func close() {
        for reader in idleReaders.withLock({ readers in
            defer { readers = [] }
            return readers
        }) { reader.close() }
    }

    var rebuildSchema: String { schema + "_rebuild" }
}

/// How the replicas' writers take turns and hear each other (see `PostgresReadModels`).
final class PostgresSharing: ReadModelSharing {
    let location: PostgresLocation
    let schema: String
    let logger: Logger
    /// The `LISTEN`/`NOTIFY` channel of this schema's models.
    var channel: String { "jframe_readmodels_\(schema)" }

    init(location: PostgresLocation, schema: String, logger: Logger) {
        self.location = location
        self.schema = schema
        self.logger = logger
    }

    func takeTurn(_ writer: any ReadModelDatabase) throws {
        try Self.takeTurn(writer, schema: schema)
    }

    /// Waits for the writers' turn on `schema`, held to the end of the transaction.
    static func takeTurn(_ writer: any ReadModelDatabase, schema: String) throws {
        try writer.run("SELECT pg_advisory_xact_lock(hashtext(?))", .text("jframe-readmodels-writer:\(schema)"))
    }

    func announce(_ writer: any ReadModelDatabase, handledThrough: Int64, streams: [String]?) throws {
        try writer.run("SELECT pg_notify(?, ?)", .text(channel), .text(Self.payload(handledThrough, streams)))
    }

    /// `<position>` alone (any stream may have changed), or `<position> <stream id> …`; a payload
    /// stays far below PostgreSQL's 8000-byte limit (over 4000 bytes of ids: none are listed).
    static func payload(_ handledThrough: Int64, _ streams: [String]?) -> String {
        guard let streams, !streams.contains(where: { $0.contains(" ") }) else { return "\(handledThrough)" }
        let listed = ([String(handledThrough)] + streams).joined(separator: " ")
        return listed.utf8.count <= 4000 ? listed : "\(handledThrough)"
    }

    static func parse(_ payload: String) -> (Int64, [String]?)? {
        let parts = payload.split(separator: " ").map(String.init)
        guard let first = parts.first, let position = Int64(first) else { return nil }
        return (position, parts.count > 1 ? Array(parts.dropFirst()) : nil)
    }

    func follow(_ heard: @escaping @Sendable (Int64, [String]?) -> Void) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: location.connectionConfiguration(connectTimeout: .seconds(5)), id: 2, logger: logger)
                defer { BlockingPostgresConnection.closeInBackground(connection) }
                try await connection.listen(on: channel) { notifications in
                    // Listening before reading: nothing announced in between is missed.
                    let stored =
                        try await connection.query(
                            "SELECT value FROM \(unescaped: "\"\(schema)\"").meta WHERE key = 'handled_through'", logger: logger
                        ).collect().first?.decode(Int64.self) ?? 0
                    heard(stored, nil)
                    if failures > 0 { logger.notice("hearing the other replicas again", metadata: ["schema": "\(schema)"]) }
                    failures = 0
                    for try await notification in notifications {
                        if let (position, streams) = Self.parse(notification.payload) { heard(position, streams) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                if failures == 0 {
                    logger.warning(
                        "cannot hear the other replicas' progress; retrying", metadata: ["error": "\(PostgresErrors.describe(error))"])
                }
                failures += 1
            }
            try? await Task.sleep(for: .seconds(min(5, failures)))
        }
    }
}

/// The shadow schema a rebuild writes into: created empty, written with `synchronous_commit`
/// off (the swap's transaction is what must last), dropped after the swap. Its connection holds
/// a session advisory lock for as long as the rebuild runs: one rebuild at a time across
/// replicas, and a replica killed mid-rebuild frees the lock with its connection.
final class PostgresRebuildSchema: ReadModelRebuildTarget, @unchecked Sendable {
    let location: String
    private let connection: BlockingPostgresConnection
    private let discarded = Mutex(false)

    init(backend: PostgresReadModels) throws {
        location = backend.rebuildSchema
        connection = BlockingPostgresConnection(
            settings: backend.settings(backend.rebuildSchema, onConnect: ["SET synchronous_commit = off"]),
            logger: Logger(label: "readmodels.rebuild"))
        let taken =
            try connection.first("SELECT pg_try_advisory_lock(hashtext(?))::int::bigint", .text("jframe-readmodels-rebuild:\(backend.schema)")) {
                $0.int64(0)
            } ?? 0
        guard taken == 1 else {
            connection.close()
            throw ReadModelError.busy("a rebuild of these read models is already running (on this or another replica)")
        }
        do {
            try connection.execute("DROP SCHEMA IF EXISTS \"\(location)\" CASCADE")
            // The same projections make the tables and say which of their indexes wait.
            let projections = ReadSide.projections
            try PostgresReadModelSchema.migrate(connection, schema: location, projections: projections)
            deferred = Mutex(try Self.putOff(projections.flatMap(\.tables), in: location, on: connection))
        } catch {
            connection.close()
            throw error
        }
    }

    /// The indexes put off until the history is loaded (`RebuildIndexes`), dropped now, each as
    /// the statement that builds it again.
    private let deferred: Mutex<[String]>

    /// Drops the waiting indexes of `tables` in `schema`, returning how to build each again: a
    /// constraint's (primary key, unique) with its name, so the swap moves the same catalog
    /// objects as a rebuild without this step would.
    static func putOff(_ tables: [ReadModelTable], in schema: String, on db: any ReadModelDatabase) throws -> [String] {
        var rebuild: [String] = []
        for table in tables where table.rebuildIndexes != .asRowsGoIn {
            let indexes = try db.query(
                """
                SELECT ic.relname, pg_get_indexdef(i.indexrelid), coalesce(c.conname, ''), coalesce(pg_get_constraintdef(c.oid), ''),
                    (i.indisprimary OR i.indisunique)::int::bigint
                FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                JOIN pg_class ic ON ic.oid = i.indexrelid LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = t.oid
                WHERE n.nspname = ? AND t.relname = ? ORDER BY ic.relname
                """, .text(schema), .text(table.name)
            ) { (index: $0.text(0), definition: $0.text(1), constraint: $0.text(2), constraintDefinition: $0.text(3), unique: $0.int64(4) == 1) }
            let qualified = "\"\(schema)\".\"\(table.name)\""
            for index in indexes where table.rebuildIndexes == .allAfterLoading || !index.unique {
                if index.constraint.isEmpty {
                    try db.execute("DROP INDEX \"\(schema)\".\"\(index.index)\"")
                    rebuild.append(index.definition)
                } else {
                    try db.execute("ALTER TABLE \(qualified) DROP CONSTRAINT \"\(index.constraint)\"")
                    rebuild.append("ALTER TABLE \(qualified) ADD CONSTRAINT \"\(index.constraint)\" \(index.constraintDefinition)")
                }
            }
        }
        return rebuild
    }

    func openWriter() throws -> any ReadModelDatabase { connection }

    func finishLoading(_ writer: any ReadModelDatabase) throws {
        try deferred.withLock { statements in
            while let statement = statements.first {
                try writer.execute(statement)
                statements.removeFirst()
            }
        }
    }

    func finishWriting(_ writer: any ReadModelDatabase) {}

    func discard() {
        discarded.withLock { discarded in
            guard !discarded else { return }
            discarded = true
            _ = try? connection.execute("DROP SCHEMA IF EXISTS \"\(location)\" CASCADE")
            connection.close()
        }
    }
}
