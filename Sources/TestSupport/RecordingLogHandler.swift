import Logging
import Synchronization

/// Log lines a test can read back: level, message, and the handler's metadata merged with the
/// line's own.
public final class LogRecords: Sendable {
    public struct Record: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]
    }
    private let records = Mutex<[Record]>([])
    public init() {}
    func append(_ record: Record) { records.withLock { $0.append(record) } }
    public var all: [Record] { records.withLock { $0 } }
}

/// A `LogHandler` that keeps every line in `records`.
public struct RecordingLogHandler: LogHandler {
    public let records: LogRecords
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public init(records: LogRecords) { self.records = records }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        records.append(.init(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }
}
