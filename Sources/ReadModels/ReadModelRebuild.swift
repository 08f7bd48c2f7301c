import Foundation
import SQLite
import Synchronization
import WallTime

/// A rebuild of the read models from the event store's history, written into a fresh database
/// beside the live one while the live one keeps answering; `ReadModelStore.finishRebuild` then
/// replaces the live models with it in one transaction.
///
/// Its state sits behind a lock: one task applies pages while another reads the progress.
public final class ReadModelRebuild: Sendable {
    private struct State {
        var writer: ProjectionWriter?
        var eventsApplied: Int64 = 0
        var lastPosition: Int64 = 0
    }

    public let path: String
    private let state: Mutex<State>

    public var eventsApplied: Int64 { state.withLock { $0.eventsApplied } }
    /// The last position read from the history: every event up to it is in the new models.
    public var lastPosition: Int64 { state.withLock { $0.lastPosition } }

    /// Starts an empty rebuild database next to `store`'s (an earlier unfinished one is removed).
    public init(beside store: ReadModelStore) throws {
        path = store.path + ".rebuild"
        Self.remove(path)
        do {
            let db = try ReadModelSchema.open(path)
            // A throwaway file until the swap: durability comes from the swap's own transaction.
            try db.execute("PRAGMA synchronous=OFF")
            state = Mutex(State(writer: try ProjectionWriter(db: db, clock: SystemWallClock())))
        } catch {
            // A full disk fails the schema after SQLite created the file: leave nothing behind.
            Self.remove(path)
            throw error
        }
    }

    /// Decodes events' JSON; pure, so it can run on another thread while a page is applied.
    public static func decode(_ events: [ProjectedEvent]) -> [DecodedEvent] {
        let projector = Projector()
        return events.map(projector.decode)
    }

    /// Applies the next events of the history, in position order, as one transaction.
    public func apply(_ events: [ProjectedEvent]) throws {
        try apply(decoded: Self.decode(events))
    }

    /// Applies the next events of the history, decoded by `decode`, as one transaction.
    public func apply(decoded events: [DecodedEvent]) throws {
        try state.withLock { state in
            guard let writer = state.writer, let first = events.first else { return }
            if first.event.position != state.lastPosition + 1 {
                throw ReadModelError.invalid("the history skipped from position \(state.lastPosition) to \(first.event.position)")
            }
            _ = try writer.apply(history: events)
            state.eventsApplied += Int64(events.count)
            state.lastPosition = events.last!.event.position
        }
    }

    public func counts() throws -> ReadModelCounts {
        try state.withLock { state in
            guard let writer = state.writer else { throw ReadModelError.closed }
            return try ReadModelStore.counts(writer.db)
        }
    }

    /// Closes the rebuild database (before the swap reads it, or when abandoning it).
    func close() {
        state.withLock { state in
            if let writer = state.writer { _ = try? writer.db.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
            state.writer = nil
        }
    }

    /// Abandons the rebuild and deletes its files.
    public func discard() {
        close()
        Self.remove(path)
    }

    static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}

extension ProjectionWriter {
    /// Replaces the models with a finished rebuild's, in one transaction: the model tables and
    /// stream versions are copied over; the partition offsets stay (the live consumer goes on
    /// from them, and the stream versions skip what the rebuild already holds); parked events
    /// the rebuild applied are dropped; the handled watermark moves up to what the rebuild read.
    ///
    /// `offsetFloors` are the broker's log start offsets, read before the swap: a stored offset
    /// below its partition's floor (records retention deleted before the projection applied
    /// them, which stopped it following with OUT_OF_RANGE) moves up to it. Safe only here: the
    /// deleted records were published, so stored, so their events are in the rebuilt models.
    func replaceModels(from rebuildPath: String, through position: Int64, offsetFloors: [PartitionOffset] = []) throws {
        try db.run("ATTACH DATABASE ? AS rebuilt", .text(rebuildPath))
        defer { _ = try? db.execute("DETACH DATABASE rebuilt") }
        try transaction {
            for table in ReadModelSchema.modelTables {
                try db.execute("DELETE FROM main.\(table); INSERT INTO main.\(table) SELECT * FROM rebuilt.\(table);")
            }
            try db.execute(
                """
                DELETE FROM main.parked WHERE stream_id <> ''
                    AND stream_version <= coalesce((SELECT version FROM main.streams s WHERE s.stream_id = parked.stream_id), 0);
                INSERT OR IGNORE INTO main.parked(state, topic, partition, offset, event_id, event_type, stream_id, stream_version,
                    position, schema_version, recorded_at, data, error, attempts, parked_at)
                SELECT state, 'history', 0, position, event_id, event_type, stream_id, stream_version, position, schema_version,
                    recorded_at, data, error, attempts, parked_at FROM rebuilt.parked;
                UPDATE main.parked SET state = 'FAILED', error = 'the event it waited behind was applied by a rebuild: retry it'
                    WHERE state = 'WAITING'
                    AND stream_version = (SELECT min(stream_version) FROM main.parked p WHERE p.stream_id = parked.stream_id);
                """)
            for floor in offsetFloors {
                try db.run(
                    "INSERT INTO offsets(topic, partition, next_offset) VALUES(?, ?, ?) ON CONFLICT DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                    .text(floor.topic), .integer(Int64(floor.partition)), .integer(floor.nextOffset))
            }
            try setHandledThrough(position)
        }
        // The cached stream versions and parked streams are the old models': read them again.
        try reload()
    }
}

extension ReadModelStore {
    /// Finishes a rebuild: with the live writer held (so the live projection pauses), `catchUp`
    /// reads the history's last events into `rebuild` until it reaches the head; then the live
    /// models are replaced by the rebuilt ones in one transaction. Queries keep answering from
    /// the old models until that commit, and from the new ones after it.
    public func finishRebuild(
        _ rebuild: ReadModelRebuild, offsetFloors: [PartitionOffset] = [], catchUp: () async throws -> Void
    ) async throws -> ReadModelCounts {
        let (counts, through) = try await exclusively {
            try await catchUp()
            rebuild.close()
            let path = rebuild.path
            let position = rebuild.lastPosition
            return try await self.onWriterQueue { writer in
                try writer.replaceModels(from: path, through: position, offsetFloors: offsetFloors)
                return (try ReadModelStore.counts(writer.db), writer.handledThrough)
            }
        }
        rebuild.discard()
        published([], through: through)
        watchers.changedAll()
        return counts
    }
}
