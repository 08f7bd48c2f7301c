import AsyncLocks
import CommitScheduling
import Dispatch
import Foundation
import Logging
import SQLite
import Synchronization
import WallTime
import Watermarks

/// The QueryService's read models: one writer applying events exactly once in effect, readers
/// answering queries, a watermark queries can wait on to read their own writes, and watchers told
/// about each applied change. Where the rows live is the backend's business (`SQLiteReadModels`,
/// or PostgreSQL shared by several replicas).
///
/// Writes run one at a time on a dedicated queue (SQLite has one writer anyway, and PostgreSQL's
/// writer blocks its thread on the network), so the projection's partitions, parked-event
/// repairs and a rebuild's swap never interleave in this process; with a shared backend, writers
/// of all processes take turns (`ReadModelSharing`).
public final class ReadModelStore: Sendable {
    public struct Options: Sendable {
        /// Idle reader connections kept for queries.
        public var readers = 8
        /// Milliseconds since the Unix epoch, UTC (parked-at times).
        public var clock: any WallClock = SystemWallClock()
        /// The longest a read-your-writes query waits for its `minPosition`, whatever its deadline
        /// (or without one): a client must not hold a call open forever on a position that never
        /// comes.
        public var maxPositionWait: Duration = .seconds(30)
        /// Runs before every query's read (fault injection: a slow or stalled disk in tests).
        public var beforeEachRead: (@Sendable () -> Void)?
        public init() {}
    }

    public let backend: any ReadModelBackend
    public let options: Options
    private let writer: Mutex<ProjectionWriter?>
    private let writerQueue = DispatchQueue(label: "readmodels.writer")
    /// Held for each write, and by a rebuild's last catch-up and swap.
    private let writeLock = AsyncLock()
    private let logger: Logger
    /// Every global position up to this one is applied (or parked).
    let handled: WatermarkWaiters
    let watchers = ChangeWatchers()
    /// Where queries' reads run (see `reading`).
    private let readGuard = SlowDiskGuard(preferred: BackgroundCommitScheduler())
    /// Hears the other writers of a shared backend.
    private let follower: Task<Void, Never>?

    /// Opens or creates the read models in the SQLite file at `path` (the directory must exist).
    public convenience init(path: String, options: Options = Options(), logger: Logger = Logger(label: "readmodels")) throws {
        try self.init(backend: SQLiteReadModels(path: path, readers: options.readers, logger: logger), options: options, logger: logger)
    }

    /// Opens the read models `backend` keeps.
    public init(backend: any ReadModelBackend, options: Options = Options(), logger: Logger = Logger(label: "readmodels")) throws {
        self.backend = backend
        self.options = options
        self.logger = logger
        let projectionWriter = try ProjectionWriter(db: backend.openWriter(), clock: options.clock, sharing: backend.sharing)
        let handled = WatermarkWaiters(highWatermark: projectionWriter.handledThrough)
        self.handled = handled
        writer = Mutex(projectionWriter)
        if let sharing = backend.sharing {
            let watchers = watchers
            follower = Task {
                await sharing.follow { through, streams in
                    handled.advance(to: through)
                    if let streams {
                        for stream in streams { watchers.changed(stream) }
                    } else {
                        watchers.changedAll()
                    }
                }
            }
        } else {
            follower = nil
        }
    }

    deinit { follower?.cancel() }

    /// Where the models are, for logs and status.
    public var displayName: String { backend.displayName }

    /// Finishes the current write and closes the writer.
    public func close() {
        follower?.cancel()
        writerQueue.sync { writer.withLock { $0 = nil } }
        backend.close()
    }

    /// Runs `body` with the writer, one write at a time, off the caller's thread.
    func write<T: Sendable>(_ body: @escaping @Sendable (ProjectionWriter) throws -> T) async throws -> T {
        try await writeLock.withLock { try await onWriterQueue(body) }
    }

    /// Runs `body` with no write running or starting until it returns.
    func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        try await writeLock.withLock(body)
    }

    /// Runs `body` with the writer on the writer queue (the caller holds the write lock).
    func onWriterQueue<T: Sendable>(_ body: @escaping @Sendable (ProjectionWriter) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            writerQueue.async {
                continuation.resume(
                    with: Result {
                        try self.writer.withLock { writer in
                            guard let writer else { throw ReadModelError.closed }
                            defer { self.backend.afterWrite(writer.db) }
                            do {
                                return try body(writer)
                            } catch let error as any ReadModelDatabaseFailure where !(error is SQLiteError) {
                                // SQLite's errors keep their own statuses (a full disk); another
                                // engine's failure makes the models unusable for now.
                                throw ReadModelError.unavailable("\(error)")
                            }
                        }
                    })
            }
        }
    }

    /// Applies one fetched batch of a partition's records (see `ProjectionWriter` for the rules),
    /// then moves the handled watermark and tells watchers.
    @discardableResult
    public func apply(topic: String, partition: Int, records: [IncomingRecord]) async throws -> BatchOutcome {
        let (outcome, through) = try await write { writer in
            (try writer.apply(topic: topic, partition: partition, records: records), writer.handledThrough)
        }
        published(outcome.changes, through: through)
        if outcome.parked > 0 {
            logger.warning("parked events", metadata: ["topic": "\(topic)", "partition": "\(partition)", "count": "\(outcome.parked)"])
        }
        return BatchOutcome(applied: outcome.applied, duplicates: outcome.duplicates, parked: outcome.parked)
    }

    /// The next offset to apply in a partition, as stored with the models; nil when none was.
    public func nextOffset(topic: String, partition: Int) async throws -> Int64? {
        try await write { writer in
            try writer.refreshShared()
            return writer.nextOffset(topic: topic, partition: partition)
        }
    }

    /// Stored next offsets of every partition the projection has applied.
    public func partitionOffsets() async throws -> [PartitionOffset] {
        try await write { writer in
            try writer.refreshShared()
            return writer.partitionOffsets.map { PartitionOffset(topic: $0.topic, partition: $0.partition, nextOffset: $0.nextOffset) }
        }
    }

    /// Every global position up to this one is applied or parked.
    public var handledPosition: Int64 { handled.current }

    /// Waits until `position` is handled; false when `timeout` passed first.
    public func waitForPosition(_ position: Int64, timeout: Duration) async -> Bool {
        if handled.current >= position { return true }
        return await handled.wait(untilAbove: position - 1, timeout: timeout)
    }

    /// The records a skip of `ids` (all of them when nil) selects, which it must first check
    /// against the event store: FAILED and CONFLICT ones, and with nil the WAITING ones too.
    public func parkedClaims(ids: [Int64]?) async throws -> [ParkedClaim] {
        try await write { try $0.selectParked(ids: ids, skipping: true) }
    }

    /// Retries (or skips) parked records: all FAILED and CONFLICT ones, or those with `ids`. A
    /// skip drops only the records `stored` says the event store does not hold; the others are
    /// returned as `kept`.
    public func resolveParked(
        ids: [Int64]?, skip: Bool, stored: [Int64: StoreVerdict] = [:]
    ) async throws -> (applied: Int, skipped: Int, kept: [Int64]) {
        let (result, through) = try await write { writer in
            (try writer.resolveParked(ids: ids, skip: skip, stored: stored), writer.handledThrough)
        }
        published(result.changes, through: through)
        return (result.applied, result.skipped, result.kept)
    }

    func published(_ changes: Set<String>, through: Int64) {
        handled.advance(to: through)
        for streamId in changes { watchers.changed(streamId) }
    }

    /// Nudges each time an event of `streamId` is applied (or the models are rebuilt); the
    /// stream of nudges ends when its consumer stops iterating.
    public func watch(stream streamId: String) -> AsyncStream<Void> { watchers.watch(streamId) }

    /// Runs `query` (one of this store's reads) on the calling event loop while reads have been
    /// quick, and on a thread once one stalled (over 50 ms) or the recent ones averaged over 5 ms,
    /// until neither has happened for five seconds: a read stalled on disk then holds up no other
    /// call the loop serves (`SlowDiskGuard`). A backend whose reads wait on the network always
    /// reads on a Dispatch thread.
    public func reading<T: Sendable>(_ query: @escaping @Sendable (ReadModelStore) throws -> T) async throws -> T {
        if backend.readsBlock { return try await offload { try query(self) } }
        return try await readGuard.run { try query(self) }
    }

    /// Runs a query on a reader.
    func read<T>(_ body: (any ReadModelDatabase) throws -> T) throws -> T {
        options.beforeEachRead?()
        do {
            return try backend.read(body)
        } catch let error as any ReadModelDatabaseFailure {
            throw ReadModelError.unavailable("\(error)")
        }
    }
}

/// What one batch did.
public struct BatchOutcome: Sendable, Hashable {
    public var applied: Int
    public var duplicates: Int
    public var parked: Int
}

public struct PartitionOffset: Sendable, Hashable {
    public var topic: String
    public var partition: Int
    public var nextOffset: Int64

    public init(topic: String, partition: Int, nextOffset: Int64) {
        self.topic = topic
        self.partition = partition
        self.nextOffset = nextOffset
    }
}

public enum ReadModelError: Error, CustomStringConvertible {
    case closed
    case unavailable(String)
    case invalid(String)
    /// Something that runs one at a time (a rebuild) is running.
    case busy(String)

    public var description: String {
        switch self {
        case .closed: "the read models are closed"
        case .unavailable(let message): "the read models cannot be used: \(message)"
        case .invalid(let message), .busy(let message): message
        }
    }
}

/// Who is watching which event stream: each watcher gets a nudge when an event of it is applied.
final class ChangeWatchers: Sendable {
    private let watchers = Mutex<[String: [UUID: AsyncStream<Void>.Continuation]]>([:])

    /// A stream of nudges for the event stream `streamId`; it ends when the caller stops iterating.
    func watch(_ streamId: String) -> AsyncStream<Void> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        watchers.withLock { $0[streamId, default: [:]][id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.watchers.withLock { watchers in
                watchers[streamId]?[id] = nil
                if watchers[streamId]?.isEmpty == true { watchers[streamId] = nil }
            }
        }
        return stream
    }

    func changedAll() {
        for continuation in watchers.withLock({ $0.values.flatMap(\.values) }) { continuation.yield() }
    }

    func changed(_ streamId: String) {
        for continuation in watchers.withLock({ $0[streamId].map { Array($0.values) } ?? [] }) { continuation.yield() }
    }
}
