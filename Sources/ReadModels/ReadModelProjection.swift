import Domain

/// One domain's read side, as the engine runs it: the tables it owns (with versioned
/// migrations), the event types it handles, and how each changes its rows.
///
/// The engine does the rest for every projection alike (`ProjectionWriter`): exactly once in
/// effect (partition offsets, stream versions and handled positions in the batch's transaction),
/// per-stream order, parking with retry and skip, read-your-writes by position, rebuild into fresh
/// tables and swap, status. A new domain's read side is a type conforming to this protocol, its
/// queries, and one line in `ReadSide.projections`.
///
/// An event type may be handled by several projections (event-carried state: a job's update
/// changes the jobs and every application's copy); they apply it in registration order, in one
/// savepoint, so a failure in any parks the event for all.
public protocol ReadModelProjection: Sendable {
    /// Unique among the projections; its migrations are recorded under it.
    var name: String { get }
    /// The tables it owns: a rebuild replaces them whole, a canonical dump lists them.
    var tables: [ReadModelTable] { get }
    /// Its schema's steps in version order, from 1. Each runs once per database, in the
    /// transaction that records it; write them to be safe on tables that already exist (`IF NOT
    /// EXISTS`): the first projections' tables predate the projections' own bookkeeping.
    var migrations: [ReadModelMigration] { get }
    /// The event type names (`DomainEvent.eventType`) it handles.
    var eventTypes: Set<String> { get }
    /// Applies one event it handles (already decoded and upcast), or throws when the event does
    /// not fit the model (the event is then parked with the error). `batch` is what `makeBatch`
    /// made for this batch, when it is folded in memory.
    func apply(_ event: any DomainEvent, _ stored: ProjectedEvent, to db: any ReadModelDatabase, batch: (any ProjectionBatch)?) throws
    /// State kept across one batch's events and written back at its end (a fold of many moves of
    /// one row), or nil. Used only where a failure rolls the whole batch back, so the fold and the
    /// rows never disagree after a commit.
    func makeBatch() -> (any ProjectionBatch)?
}

extension ReadModelProjection {
    public func makeBatch() -> (any ProjectionBatch)? { nil }
}

/// A projection's in-memory state for one batch (see `ReadModelProjection.makeBatch`).
///
/// A rebuild's writer, the only one writing its tables, keeps its batches from one committed
/// transaction to the next (`ProjectionWriter.writesFreshTables`): after `flush` a batch should
/// hold the rows as written, so the next batch's `prefetch` reads only what it has not seen.
public protocol ProjectionBatch: AnyObject {
    /// Reads up front what the batch's events will touch and it does not hold yet (one
    /// statement, not one per event).
    func prefetch(_ events: [DecodedEvent], from db: any ReadModelDatabase) throws
    /// Writes what changed back to the rows, before the batch's transaction commits.
    func flush(to db: any ReadModelDatabase) throws
}

/// A table a projection owns, with the columns that order its rows in a canonical dump.
public struct ReadModelTable: Sendable, Hashable {
    public var name: String
    public var orderBy: String
    /// Which of its indexes a rebuild may build once after loading the history.
    public var rebuildIndexes: RebuildIndexes

    public init(_ name: String, orderBy: String, rebuildIndexes: RebuildIndexes = .asRowsGoIn) {
        self.name = name
        self.orderBy = orderBy
        self.rebuildIndexes = rebuildIndexes
    }
}

/// When a rebuild builds a table's indexes: as its rows go in, or once after the history is
/// loaded, which sorts the rows once instead of growing a B-tree one row at a time (bulk loads
/// and `pg_restore` do the same). Only what applying never reads through may wait: an index
/// missing while events are applied would turn each lookup by it into a scan. On PostgreSQL the
/// shadow schema's waiting indexes are dropped after it is created and built again before the
/// swap; a unique one that no longer holds (a row applied twice) fails the rebuild there, and
/// the live models stay. SQLite builds every index as rows go in (its tables are clustered on
/// their primary keys).
public enum RebuildIndexes: Sendable, Hashable {
    /// Applying reads or upserts through its secondary indexes.
    case asRowsGoIn
    /// Applying reads and upserts by the primary key only: the indexes that are neither it nor
    /// unique (those decide `ON CONFLICT`) wait.
    case secondaryAfterLoading
    /// Applying only inserts rows (no reads, no `ON CONFLICT`): every index waits, the primary
    /// key too, which is then checked once, when it is built.
    case allAfterLoading
}

/// One step of a projection's schema: DDL written once for both engines through `ReadModelSQL`.
public struct ReadModelMigration: Sendable {
    public var version: Int
    public var sql: @Sendable (ReadModelSQL) -> String

    public init(version: Int, _ sql: @escaping @Sendable (ReadModelSQL) -> String) {
        self.version = version
        self.sql = sql
    }
}

/// What DDL needs to know of the engine it runs on: where the tables are and the few type names
/// that differ. Statements after DDL are written once in the dialect both accept (see
/// `ReadModelDatabase`).
public struct ReadModelSQL: Sendable {
    public enum Engine: Sendable { case sqlite, postgres }
    public var engine: Engine
    /// Prepended to table names (`"schema".` on PostgreSQL, nothing on SQLite).
    public var prefix: String

    public init(engine: Engine, prefix: String = "") {
        self.engine = engine
        self.prefix = prefix
    }

    /// A table's name as DDL must give it.
    public func table(_ name: String) -> String { prefix + name }
    /// A 64-bit integer column.
    public var int64: String { engine == .sqlite ? "INTEGER" : "BIGINT" }
    /// After a table with a primary key: SQLite stores such tables clustered by their key.
    public var withoutRowID: String { engine == .sqlite ? "WITHOUT ROWID" : "" }
}

/// An event that does not fit a read model (it is parked with this message).
public struct ProjectionError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
