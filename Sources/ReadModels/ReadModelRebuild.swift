import Foundation
import Synchronization
import WallTime

/// A rebuild of the read models from the event store's history, written into fresh models beside
/// the live ones (a file, or a shadow schema) while the live ones keep answering;
/// `ReadModelStore.finishRebuild` then replaces the live models with it in one transaction.
///
/// Its writer sits behind a lock; the progress counters are atomics beside it, so a reader of
/// the progress never waits behind a page being applied or an index being built (minutes, over
/// tens of millions of rows).
public final class ReadModelRebuild: Sendable {
    let target: any ReadModelRebuildTarget
    /// nil once closed.
    private let writer: Mutex<ProjectionWriter?>
    /// Written only under `writer`'s lock, read without it.
    private let applied = Atomic<Int64>(0)
    private let lastApplied = Atomic<Int64>(0)

    /// Where the rebuild writes (a file path, or a schema).
    public var path: String { target.location }
    public var eventsApplied: Int64 { applied.load(ordering: .relaxed) }
    /// The last position read from the history: every event up to it is in the new models.
    public var lastPosition: Int64 { lastApplied.load(ordering: .acquiring) }

    /// Starts empty models beside `store`'s (an earlier unfinished rebuild is removed).
    public init(beside store: ReadModelStore) throws {
        target = try store.backend.makeRebuildTarget()
        do {
            let writer = try ProjectionWriter(db: target.openWriter(), clock: SystemWallClock())
            writer.writesFreshTables = true
            self.writer = Mutex(writer)
        } catch {
            target.discard()
            throw error
        }
    }

    /// Decodes events' JSON; pure, so it can run on another thread while a page is applied.
    public static func decode(_ events: [ProjectedEvent]) -> [DecodedEvent] {
        events.map(Projector.registered.decode)
    }

    /// Applies the next events of the history, in position order, as one transaction.
    public func apply(_ events: [ProjectedEvent]) throws {
        try apply(decoded: Self.decode(events))
    }

    /// Applies the next events of the history, decoded by `decode`, as one transaction.
    public func apply(decoded events: [DecodedEvent]) throws {
        try writer.withLock { writer in
            guard let writer, let first = events.first else { return }
            let last = lastApplied.load(ordering: .relaxed)
            if first.event.position != last + 1 {
                throw ReadModelError.invalid("the history skipped from position \(last) to \(first.event.position)")
            }
            _ = try writer.apply(history: events)
            applied.add(Int64(events.count), ordering: .relaxed)
            lastApplied.store(events.last!.event.position, ordering: .releasing)
        }
    }

    /// Builds the indexes the target put off while the history loaded (`RebuildIndexes`). Call
    /// it once the bulk of the history is in, before `finishRebuild` holds the live writer for
    /// the last events: the build is the slow part, and the live models keep being written and
    /// read meanwhile. `finishRebuild` calls it too (then it has nothing left to build).
    public func finishLoading() throws {
        try writer.withLock { writer in
            guard let writer else { throw ReadModelError.closed }
            try target.finishLoading(writer.db)
        }
    }

    public func counts() throws -> ReadModelCounts {
        try writer.withLock { writer in
            guard let writer else { throw ReadModelError.closed }
            return try ReadModelStore.counts(writer.db)
        }
    }

    /// Closes the rebuild's writer (before the swap reads its tables, or when abandoning it).
    func close() {
        writer.withLock { writer in
            if let open = writer { target.finishWriting(open.db) }
            writer = nil
        }
    }

    /// Abandons the rebuild and removes what it wrote.
    public func discard() {
        close()
        target.discard()
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
    func replaceModels(
        from live: String, _ rebuilt: String, through position: Int64, offsetFloors: [PartitionOffset] = [], backend: any ReadModelBackend
    ) throws {
        try transaction {
            for table in projector.modelTables.map(\.name) {
                try db.execute(backend.replaceTable(table, live: live, rebuilt: rebuilt))
            }
            try db.execute(
                """
                DELETE FROM \(live).parked WHERE stream_id <> ''
                    AND stream_version <= coalesce((SELECT version FROM \(live).streams s WHERE s.stream_id = parked.stream_id), 0);
                INSERT INTO \(live).parked(state, topic, partition, "offset", event_id, event_type, stream_id, stream_version,
                    position, schema_version, recorded_at, data, error, attempts, parked_at)
                SELECT state, 'history', 0, position, event_id, event_type, stream_id, stream_version, position, schema_version,
                    recorded_at, data, error, attempts, parked_at FROM \(rebuilt).parked WHERE true ON CONFLICT DO NOTHING;
                UPDATE \(live).parked SET state = 'FAILED', error = 'the event it waited behind was applied by a rebuild: retry it'
                    WHERE state = 'WAITING'
                    AND stream_version = (SELECT min(stream_version) FROM \(live).parked p WHERE p.stream_id = parked.stream_id);
                """)
            for floor in offsetFloors {
                try db.run(
                    """
                    INSERT INTO offsets(topic, partition, next_offset) VALUES(?, ?, ?)
                    ON CONFLICT(topic, partition) DO UPDATE SET next_offset =
                        CASE WHEN excluded.next_offset > offsets.next_offset THEN excluded.next_offset ELSE offsets.next_offset END
                    """,
                    .text(floor.topic), .integer(Int64(floor.partition)), .integer(floor.nextOffset))
            }
            try setHandledThrough(position)
            markEverythingChanged()
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
            try await offload { try rebuild.finishLoading() }
            rebuild.close()
            let position = rebuild.lastPosition
            let backend = backend
            return try await self.onWriterQueue { writer in
                try backend.withRebuild(rebuild.target, attachedTo: writer.db) { live, rebuilt in
                    try writer.replaceModels(from: live, rebuilt, through: position, offsetFloors: offsetFloors, backend: backend)
                }
                return (try ReadModelStore.counts(writer.db), writer.handledThrough)
            }
        }
        // Off the caller's executor: dropping a shadow schema waits on the network.
        try? await offload { rebuild.discard() }
        published([], through: through)
        watchers.changedAll()
        return counts
    }
}
