import Foundation
import JSONCoding
public import Logging
import Synchronization
import WallTime

/// How a server writes its log: `text` for people (the default), `json` for log pipelines.
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// Writes each log record as one JSON object on one line of standard error, for log pipelines
/// (Loki, Elasticsearch, Cloud Logging) that read fields instead of parsing text:
///
/// `{"time":"2026-12-03T22:31:10.123Z","level":"info","service":"command-service","logger":"relay","message":"…",
///   "request_id":"…","correlation_id":"…","command_id":"…","trace_id":"…","span_id":"…","metadata":{…}}`
///
/// The ids are lifted out of the metadata wherever a component put them, under one name each, so a
/// query for one request finds its lines from every component; everything else stays under
/// `metadata`. Time is UTC with milliseconds.
public struct JSONLogHandler: LogHandler {
    /// Metadata keys our components use for an id, and the field each becomes.
    static let liftedKeys: [(key: String, field: String)] = [
        ("trace_id", "trace_id"), ("span_id", "span_id"), ("rpc.request_id", "request_id"),
        ("correlation-id", "correlation_id"), ("command-id", "command_id"),
    ]

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let service: String
    private let label: String
    private let output: @Sendable ([UInt8]) -> Void

    /// - Parameters:
    ///   - service: the process (`broker`, `command-service`, …), the same on every line.
    ///   - label: the logger's label (`relay`, `projection`, …).
    ///   - output: where lines go; standard error unless a test says otherwise.
    public init(
        service: String, label: String, metadataProvider: Logger.MetadataProvider? = nil,
        output: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError
    ) {
        self.service = service
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        output(
            Self.line(
                time: WallTime.nowMilliseconds(), level: event.level, service: service, label: label, message: "\(event.message)",
                metadata: merged))
    }

    /// One record as a line of JSON, newline included.
    static func line(
        time: Int64, level: Logger.Level, service: String, label: String, message: String, metadata: Logger.Metadata
    ) -> [UInt8] {
        var metadata = metadata
        var writer = JSONWriter(capacity: 256)
        writer.beginObject()
        writer.key("time")
        writer.string(iso8601(milliseconds: time))
        writer.comma()
        writer.key("level")
        writer.string(level.rawValue)
        writer.comma()
        writer.key("service")
        writer.string(service)
        writer.comma()
        writer.key("logger")
        writer.string(label)
        writer.comma()
        writer.key("message")
        writer.string(message)
        writer.comma()
        for (key, field) in liftedKeys {
            guard let value = metadata.removeValue(forKey: key) else { continue }
            writer.string(field)
            writer.raw(":")
            writer.string("\(value)")
            writer.comma()
        }
        if !metadata.isEmpty {
            writer.key("metadata")
            writer.map(metadata) { writer, value in writer.value(jsonValue(value)) }
            writer.comma()
        }
        writer.endObject()
        writer.raw("\n")
        return writer.finish()
    }

    static func jsonValue(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let item): return .string(item.description)
        case .array(let items): return .array(items.map(jsonValue))
        case .dictionary(let members): return .object(members.mapValues(jsonValue))
        }
    }

    /// Writes a whole line with one `write(2)` under a lock, so lines from many threads never interleave.
    public static let standardError: @Sendable ([UInt8]) -> Void = { line in
        stderrLock.withLock { _ in
            line.withUnsafeBytes { buffer in
                var done = 0
                while done < buffer.count {
                    let n = write(2, buffer.baseAddress! + done, buffer.count - done)
                    if n < 0 { if errno == EINTR { continue } else { return } }
                    done += n
                }
            }
        }
    }
}

private let stderrLock = Mutex(())
