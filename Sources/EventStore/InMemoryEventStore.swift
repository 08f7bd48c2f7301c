import Synchronization
import WallTime
import Watermarks

/// An event store in memory, with the same rules as the SQLite one (they share `AppendRules` and
/// one conformance suite). For tests and for embedding where durability is not wanted.
public final class InMemoryEventStore: EventStore {
    private struct State {
        var events: [RecordedEvent] = []
        var byEventId: [String: Int] = [:]
        var streams: [String: [Int]] = [:]
        var commands: [String: AppendResult] = [:]
        var snapshots: [String: Snapshot] = [:]
        var checkpoints: [String: Int64] = [:]
    }

    private let state = Mutex(State())
    private let head = WatermarkWaiters(highWatermark: 0)
    private let clock: any WallClock
    private let refusal = WriteRefusal()

    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
    }

    public var writeRefusal: String? { refusal.current }

    public func refuseWrites(because reason: String) { refusal.set(reason) }

    public func append(_ request: AppendRequest) async throws -> AppendResult {
        try AppendRules.validate(request)
        try refusal.check()
        let now = clock.nowMilliseconds()
        let result = try state.withLock { state -> AppendResult in
            if let commandId = request.commandId, let earlier = state.commands[commandId] {
                return try AppendRules.repeated(request, earlier: earlier)
            }
            let stored = request.events.map { event in state.byEventId[event.eventId].map { state.events[$0] } }
            if let earlier = try AppendRules.duplicate(of: request, stored: stored) { return earlier }
            let version = Int64(state.streams[request.streamId]?.count ?? 0)
            guard request.expected.accepts(version) else {
                throw EventStoreError.wrongExpectedVersion(streamId: request.streamId, expected: request.expected, actual: version)
            }
            var next = version
            for event in request.events {
                next += 1
                let index = state.events.count
                state.events.append(
                    RecordedEvent(
                        eventId: event.eventId, streamId: request.streamId, type: event.type, schemaVersion: event.schemaVersion,
                        streamVersion: next, position: Int64(index + 1), recordedAt: now, correlationId: event.correlationId,
                        causationId: event.causationId, data: event.data, traceParent: event.traceParent))
                state.byEventId[event.eventId] = index
                state.streams[request.streamId, default: []].append(index)
            }
            let result = AppendResult(streamId: request.streamId, version: next, position: Int64(state.events.count))
            if let commandId = request.commandId {
                var stored = result
                stored.commandDigest = request.commandDigest ?? ""
                state.commands[commandId] = stored
            }
            return result
        }
        head.advance(to: result.position)
        return result
    }

    public func readStream(_ streamId: String, fromVersion: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try AppendRules.checkPage(maxCount)
        return state.withLock { state in
            let indexes = state.streams[streamId] ?? []
            let start = Int(max(fromVersion, 1)) - 1
            guard start < indexes.count else { return [] }
            return indexes[start..<min(indexes.count, start + maxCount)].map { state.events[$0] }
        }
    }

    public func readAll(fromPosition: Int64, maxCount: Int) async throws -> [RecordedEvent] {
        try AppendRules.checkPage(maxCount)
        return state.withLock { state in
            let start = Int(max(fromPosition, 1)) - 1
            guard start < state.events.count else { return [] }
            return Array(state.events[start..<min(state.events.count, start + maxCount)])
        }
    }

    public func headPosition() async throws -> Int64 { head.current }

    public func streamVersion(_ streamId: String) async throws -> Int64 {
        state.withLock { Int64($0.streams[streamId]?.count ?? 0) }
    }

    public func waitForEvents(after position: Int64, timeout: Duration) async -> Bool {
        await head.wait(untilAbove: position, timeout: timeout)
    }

    public func commandResult(_ commandId: String) async throws -> AppendResult? {
        state.withLock { $0.commands[commandId] }
    }

    public func loadSnapshot(_ streamId: String) async throws -> Snapshot? {
        state.withLock { $0.snapshots[streamId] }
    }

    public func saveSnapshot(_ snapshot: Snapshot) async throws {
        state.withLock { state in
            if (state.snapshots[snapshot.streamId]?.version ?? -1) < snapshot.version { state.snapshots[snapshot.streamId] = snapshot }
        }
    }

    public func checkpoint(_ name: String) async throws -> Int64? {
        state.withLock { $0.checkpoints[name] }
    }

    public func saveCheckpoint(_ name: String, position: Int64) async throws {
        state.withLock { $0.checkpoints[name] = position }
    }
}
