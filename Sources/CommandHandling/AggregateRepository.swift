import AsyncLocks
import Domain
import EventStore
import Foundation
import Logging
import Synchronization

/// Loads aggregates by folding their events and saves their snapshots.
///
/// Three ways to a state, cheapest first:
/// 1. a cache of recently written aggregates (state and version). It can only be stale if another
///    process wrote the stream; then the append fails on its expected version, the entry is
///    dropped and the command is decided again on a fresh load;
/// 2. the stream's latest snapshot plus the events after it;
/// 3. every event of the stream.
public final class AggregateRepository: Sendable {
    public struct Options: Sendable {
        /// Save a snapshot each time a stream's version passes a multiple of this; 0: never.
        public var snapshotEvery = 100
        /// Most aggregates kept in memory.
        public var cacheCapacity = 10_000
        public init() {}
    }

    private struct Cached {
        var state: any Aggregate
        var version: Int64
    }

    let store: any EventStore
    let registry: EventTypeRegistry
    let options: Options
    private let logger: Logger
    private let cache = Mutex<[String: Cached]>([:])
    /// Commands on one stream take turns (see `AggregateCommandHandler`).
    /// One command at a time per stream within this process.
    ///
    /// Commands on the same aggregate would otherwise race: all but one would lose on the
    /// expected version and be decided again, so a hot aggregate would spend its time retrying.
    /// Taking turns per stream (a single writer per entity, as actor-based systems do) leaves the
    /// expected-version check for what it is really for: writers in other processes. Different
    /// streams never wait for each other, so group commit still batches them.
    let locks = KeyedAsyncLock<String>()

    public init(store: any EventStore, registry: EventTypeRegistry, options: Options = Options(), logger: Logger = Logger(label: "repository")) {
        self.store = store
        self.registry = registry
        self.options = options
        self.logger = logger
    }

    /// The aggregate's state and version (0 and the initial state when it has no events).
    public func load<A: Aggregate>(_ type: A.Type, id: String) async throws -> (state: A, version: Int64) {
        let streamId = A.streamId(id)
        if let cached = cache.withLock({ $0[streamId] }), let state = cached.state as? A {
            return (state, cached.version)
        }
        return try await loadFromStore(type, streamId: streamId)
    }

    /// Always reads the store, never the cache: the snapshot, if any, then the events after it.
    public func loadFromStore<A: Aggregate>(_ type: A.Type, streamId: String, useSnapshot: Bool = true) async throws -> (state: A, version: Int64) {
        var state = A()
        var version: Int64 = 0
        if useSnapshot, options.snapshotEvery > 0, let snapshot = try await store.loadSnapshot(streamId), snapshot.type == Self.snapshotType(A.self) {
            do {
                state = try JSONDecoder().decode(A.self, from: Data(snapshot.data))
                version = snapshot.version
            } catch {
                logger.warning("ignoring an unreadable snapshot", metadata: ["stream": "\(streamId)", "error": "\(error)"])
            }
        }
        while true {
            let page = try await store.readStream(streamId, fromVersion: version + 1, maxCount: 1000)
            for recorded in page {
                state.apply(try registry.decode(type: recorded.type, schemaVersion: recorded.schemaVersion, data: recorded.data))
                version = recorded.streamVersion
            }
            if page.count < 1000 { break }
        }
        return (state, version)
    }

    /// Keeps a state just written, at its new version.
    public func remember<A: Aggregate>(_ state: A, streamId: String, version: Int64) {
        cache.withLock { cache in
            if cache.count >= options.cacheCapacity, cache[streamId] == nil, let victim = cache.keys.first {
                cache.removeValue(forKey: victim)
            }
            cache[streamId] = Cached(state: state, version: version)
        }
    }

    public func forget(streamId: String) {
        _ = cache.withLock { $0.removeValue(forKey: streamId) }
    }

    /// Saves a snapshot when the stream went from `oldVersion` past a multiple of `snapshotEvery`.
    /// A failed snapshot is logged, not thrown: snapshots only make loading faster.
    public func snapshotIfDue<A: Aggregate>(_ state: A, streamId: String, from oldVersion: Int64, to newVersion: Int64) async {
        let every = Int64(options.snapshotEvery)
        guard every > 0, newVersion / every > oldVersion / every else { return }
        do {
            let data = try JSONEncoder().encode(state)
            try await store.saveSnapshot(Snapshot(streamId: streamId, version: newVersion, type: Self.snapshotType(A.self), data: Array(data)))
        } catch {
            logger.warning("snapshot not saved", metadata: ["stream": "\(streamId)", "error": "\(error)"])
        }
    }

    /// Names the state's type so that snapshots of an older state shape are ignored, not misread.
    static func snapshotType<A: Aggregate>(_ type: A.Type) -> String { "\(A.category)State" }
}
