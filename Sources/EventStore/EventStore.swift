import Synchronization

/// The version a writer expects a stream to be at; the store refuses an append that does not
/// match, which is how two writers racing on one aggregate end with exactly one winner.
///
/// A stream's version is the number of events in it: 0 for a stream with no events, 1 after
/// its first event.
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// Append whatever the stream's state.
    case any
    /// The stream must not exist (version 0).
    case noStream
    /// The stream must have at least one event.
    case streamExists
    /// The stream must be at exactly this version.
    case exact(Int64)

    public var description: String {
        switch self {
        case .any: return "any"
        case .noStream: return "no stream"
        case .streamExists: return "stream exists"
        case .exact(let version): return "version \(version)"
        }
    }

    /// Whether a stream at `version` satisfies the expectation.
    public func accepts(_ version: Int64) -> Bool {
        switch self {
        case .any: return true
        case .noStream: return version == 0
        case .streamExists: return version > 0
        case .exact(let expected): return version == expected
        }
    }
}

/// An event to append, already encoded.
public struct NewEvent: Sendable, Hashable {
    /// Unique across the store. The same id appended again (with the same content) is a retry and
    /// appends nothing.
    public var eventId: String
    public var type: String
    public var schemaVersion: Int
    /// JSON.
    public var data: [UInt8]
    public var correlationId: String?
    public var causationId: String?
    /// The W3C `traceparent` of the span that made the event (its command's, when traced), so the
    /// relay's publish and the read models' apply join that trace. Not part of the event's
    /// content: a retry carrying another trace is still the same event.
    public var traceParent: String?

    public init(
        eventId: String, type: String, schemaVersion: Int = 1, data: [UInt8], correlationId: String? = nil, causationId: String? = nil,
        traceParent: String? = nil
    ) {
        self.eventId = eventId
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.correlationId = correlationId
        self.causationId = causationId
        self.traceParent = traceParent
    }
}

/// An event as stored.
public struct RecordedEvent: Sendable, Hashable {
    public var eventId: String
    public var streamId: String
    public var type: String
    public var schemaVersion: Int
    /// 1 for the stream's first event.
    public var streamVersion: Int64
    /// 1 for the store's first event; increases by one per event across all streams, in commit order.
    public var position: Int64
    /// Milliseconds since the Unix epoch, UTC.
    public var recordedAt: Int64
    public var correlationId: String?
    public var causationId: String?
    /// JSON, exactly as appended.
    public var data: [UInt8]
    /// The W3C `traceparent` it was appended with (see `NewEvent.traceParent`).
    public var traceParent: String?

    public init(
        eventId: String, streamId: String, type: String, schemaVersion: Int, streamVersion: Int64, position: Int64, recordedAt: Int64,
        correlationId: String?, causationId: String?, data: [UInt8], traceParent: String? = nil
    ) {
        self.eventId = eventId
        self.streamId = streamId
        self.type = type
        self.schemaVersion = schemaVersion
        self.streamVersion = streamVersion
        self.position = position
        self.recordedAt = recordedAt
        self.correlationId = correlationId
        self.causationId = causationId
        self.data = data
        self.traceParent = traceParent
    }
}

/// Events for one stream, appended atomically: all of them or none.
public struct AppendRequest: Sendable {
    public var streamId: String
    public var expected: ExpectedVersion
    public var events: [NewEvent]
    /// When set, the command that produced the events: the same command id again returns this
    /// append's result and appends nothing.
    public var commandId: String?
    /// What the command was (a digest of its method, target and payload), stored with its result:
    /// the same command id with another digest is `commandIdReused`, never answered with this
    /// append's result. Nil: not compared.
    public var commandDigest: String?

    public init(streamId: String, expected: ExpectedVersion, events: [NewEvent], commandId: String? = nil, commandDigest: String? = nil) {
        self.streamId = streamId
        self.expected = expected
        self.events = events
        self.commandId = commandId
        self.commandDigest = commandDigest
    }
}

/// Where an append left its stream.
public struct AppendResult: Sendable, Hashable {
    public var streamId: String
    /// The stream's version after the append.
    public var version: Int64
    /// The global position of the append's last event.
    public var position: Int64
    /// True when nothing was appended because this command id or these event ids were stored before.
    public var duplicate: Bool
    /// The digest of the command stored with this result, when it was read back by command id
    /// ("" for a result stored before digests were kept).
    public var commandDigest: String?

    public init(streamId: String, version: Int64, position: Int64, duplicate: Bool = false, commandDigest: String? = nil) {
        self.streamId = streamId
        self.version = version
        self.position = position
        self.duplicate = duplicate
        self.commandDigest = commandDigest
    }
}

/// A stream's folded state at a version, so loading it needs only the events after that version.
public struct Snapshot: Sendable, Hashable {
    public var streamId: String
    public var version: Int64
    /// The state's type name and schema, so a changed state type can ignore old snapshots.
    public var type: String
    public var data: [UInt8]

    public init(streamId: String, version: Int64, type: String, data: [UInt8]) {
        self.streamId = streamId
        self.version = version
        self.type = type
        self.data = data
    }
}

/// Why the store refused or failed an operation.
public enum EventStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stream is not at the expected version (`actual` 0: it does not exist).
    case wrongExpectedVersion(streamId: String, expected: ExpectedVersion, actual: Int64)
    /// An event id is stored already with other content, or only some of the ids are.
    case eventIdConflict(eventId: String, reason: String)
    /// The command id was stored with a different command (`streamId`: the first one's stream).
    case commandIdReused(commandId: String, streamId: String)
    /// A request the store cannot take (no events, a bad stream id, an over-long page).
    case invalid(String)
    /// The database cannot be written or read (disk full, I/O error, closed).
    case unavailable(String)
    /// What is stored is damaged or inconsistent (a checksum fails, the file fails its integrity
    /// check, or the broker holds events the store no longer has): not retryable.
    case dataLoss(String)

    public var description: String {
        switch self {
        case .wrongExpectedVersion(let streamId, let expected, let actual):
            return "stream \(streamId) is at version \(actual), expected \(expected)"
        case .eventIdConflict(let eventId, let reason): return "event id \(eventId): \(reason)"
        case .commandIdReused(let commandId, let streamId):
            return "command id \(commandId) was used before for a different command (on \(streamId)): a command id names one command; send a new one"
        case .invalid(let reason): return reason
        case .unavailable(let reason): return "event store unavailable: \(reason)"
        case .dataLoss(let reason): return "event store damaged: \(reason)"
        }
    }
}

/// An append-only store of event streams with a global order: the write side's only database and
/// its outbox (the relay follows it by position).
///
/// It plays six roles, each a protocol of its own with its own conformance suite
/// (`Tests/EventStoreTests/Conformance`), so a caller can ask for only the role it uses and a new
/// store can be proved role by role. Implementations: `SQLiteEventStore` (durable,
/// group-committed, embedded), `PostgresEventStore` (its own module: several replicas on one
/// database) and `InMemoryEventStore` (tests); every suite runs against all three.
public protocol EventStore: EventAppender, StreamReader, AllStreamReader, SnapshotStore, CheckpointStore, CommandResultStore {}

/// Appending events, and the gate that stops appends once the store found itself damaged.
public protocol EventAppender: Sendable {
    /// Appends atomically after checking, in order: the command id (seen before: its first result,
    /// `duplicate`), the event ids (all seen before with the same content: their result,
    /// `duplicate`; otherwise `eventIdConflict`), then the expected version (`wrongExpectedVersion`).
    func append(_ request: AppendRequest) async throws -> AppendResult
    /// Why the store refuses appends, when it found itself damaged or behind what was published
    /// (`dataLoss`); nil while it takes them.
    var writeRefusal: String? { get }
    /// From now on every append fails with `dataLoss(reason)`: writing on would hand out again
    /// positions the broker already holds with other events. Reads go on, for recovery.
    func refuseWrites(because reason: String)
}

/// Reading one stream: how an aggregate is loaded.
public protocol StreamReader: Sendable {
    /// Up to `maxCount` events of a stream with version >= `fromVersion`, in order.
    func readStream(_ streamId: String, fromVersion: Int64, maxCount: Int) async throws -> [RecordedEvent]
    /// A stream's version; 0 when it does not exist.
    func streamVersion(_ streamId: String) async throws -> Int64
}

/// Reading and following every stream in global order (`$all`): how the relay, `ReadAll`,
/// `SubscribeAll` and a rebuild see the store. A follower must never skip an event: a position
/// is visible only once every lower position is.
public protocol AllStreamReader: Sendable {
    /// Up to `maxCount` events with position >= `fromPosition`, in order.
    func readAll(fromPosition: Int64, maxCount: Int) async throws -> [RecordedEvent]
    /// The position of the last stored event; 0 when the store is empty.
    func headPosition() async throws -> Int64
    /// Returns once the head is past `position`, or after `timeout`; true when it is.
    func waitForEvents(after position: Int64, timeout: Duration) async -> Bool
}

/// Snapshots of folded streams, so loading a long stream reads only its tail.
public protocol SnapshotStore: Sendable {
    func loadSnapshot(_ streamId: String) async throws -> Snapshot?
    /// Stores a snapshot, replacing an older one of the stream (never a newer one).
    func saveSnapshot(_ snapshot: Snapshot) async throws
}

/// Named positions kept in the store, beside the events they count (the relay's last published
/// position).
public protocol CheckpointStore: Sendable {
    func checkpoint(_ name: String) async throws -> Int64?
    func saveCheckpoint(_ name: String, position: Int64) async throws
}

/// The results of commands already handled, by command id: how a retried command gets its first
/// answer instead of acting twice.
public protocol CommandResultStore: Sendable {
    /// The result of an earlier append made for `commandId`, if any.
    func commandResult(_ commandId: String) async throws -> AppendResult?
}

/// The write gate every store shares.
public final class WriteRefusal: Sendable {
    private let reason = Mutex<String?>(nil)

    public init() {}

    public var current: String? { reason.withLock { $0 } }

    public func set(_ text: String) { reason.withLock { $0 = $0 ?? text } }

    /// Throws `dataLoss` once writes are refused.
    public func check() throws {
        if let current { throw EventStoreError.dataLoss("appends are refused: \(current)") }
    }
}
