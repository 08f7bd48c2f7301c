import Contracts
import JSONCoding
import ReadModels
import WallTime

/// A ReadAll page (`cqrs.commands.v1.ReadAllResponse`) read straight into the events the read
/// models take: what a rebuild does with every stored event it applies.
///
/// Why not the generated `ReadAllResponse`: it makes each event a `StoredEvent` first, with its
/// `recordedAt`, `correlationId` and `causationId` as Strings the read side never keeps (heap
/// Strings: a timestamp or a UUID is longer than a small String holds), then the rebuild copies
/// it field by field into a `ProjectedEvent` and parses the timestamp. Here one pass reads the
/// same JSON with the same checks: every required member present and of its type, int64s as the
/// schema writes them, `data` well-formed JSON in valid UTF-8, members it does not need or know
/// skipped. `HistoryPageTests` holds it to the generated decoder on the same bytes.
struct HistoryPage: Sendable, JSONMessage {
    var events: [ProjectedEvent]
    var nextPosition: Int64
    var headPosition: Int64

    static var messageName: String { "ReadAllResponse" }

    init(events: [ProjectedEvent], nextPosition: Int64, headPosition: Int64) {
        self.events = events
        self.nextPosition = nextPosition
        self.headPosition = headPosition
    }

    init(json scanner: inout JSONScanner) throws {
        var events: [ProjectedEvent]?
        var nextPosition: Int64?
        var headPosition: Int64?
        // The numbers are `JSONKey.dispatchCode(of:)` of the names, as jframe-gen writes them.
        try scanner.fields { scanner, key in
            switch key.dispatchCode {
            case 419187 where key == "events":
                events = try scanner.member(key) { $0.null() ? nil : try $0.array(Self.event) }
            case 814702 where key == "nextPosition":
                nextPosition = try scanner.member(key) { $0.null() ? nil : try $0.int64String() }
            case 813166 where key == "headPosition":
                headPosition = try scanner.member(key) { $0.null() ? nil : try $0.int64String() }
            default: try scanner.skipValue()
            }
        }
        self.init(
            events: try Self.required(events, "events", scanner), nextPosition: try Self.required(nextPosition, "nextPosition", scanner),
            headPosition: try Self.required(headPosition, "headPosition", scanner))
    }

    /// One `StoredEvent` of the page as a `ProjectedEvent`.
    static func event(json scanner: inout JSONScanner) throws -> ProjectedEvent {
        var eventId: String?
        var streamId: String?
        var type: String?
        var schemaVersion: Int?
        var streamVersion: Int64?
        var position: Int64?
        var recordedAt: Int64?
        var data: [UInt8]?
        try scanner.fields { scanner, key in
            switch key.dispatchCode {
            case 484708 where key == "eventId":
                eventId = try scanner.member(key) { $0.null() ? nil : try $0.string() }
            case 553828 where key == "streamId":
                streamId = try scanner.member(key) { $0.null() ? nil : try $0.string() }
            case 291941 where key == "type":
                type = try scanner.member(key) { $0.null() ? nil : try $0.string() }
            case 881518 where key == "schemaVersion":
                schemaVersion = try scanner.member(key) { $0.null() ? nil : try $0.int() }
            case 881518 where key == "streamVersion":
                streamVersion = try scanner.member(key) { $0.null() ? nil : try $0.int64String() }
            case 553070 where key == "position":
                position = try scanner.member(key) { $0.null() ? nil : try $0.int64String() }
            case 684660 where key == "recordedAt":
                recordedAt = try scanner.member(key) { scanner in
                    if scanner.null() { return nil }
                    let text = try scanner.stringUTF8()
                    guard let milliseconds = milliseconds(iso8601UTF8: text) else {
                        throw scanner.failure("not a UTC ISO 8601 time with milliseconds: \(String(decoding: text, as: UTF8.self))")
                    }
                    return milliseconds
                }
            case 287841 where key == "data":
                data = try scanner.member(key) { $0.null() ? nil : try $0.rawValue().bytes }
            default: try scanner.skipValue()
            }
        }
        return ProjectedEvent(
            eventId: try required(eventId, "eventId", scanner), streamId: try required(streamId, "streamId", scanner),
            type: try required(type, "type", scanner), schemaVersion: try required(schemaVersion, "schemaVersion", scanner),
            streamVersion: try required(streamVersion, "streamVersion", scanner), position: try required(position, "position", scanner),
            recordedAt: try required(recordedAt, "recordedAt", scanner), data: try required(data, "data", scanner))
    }

    private static func required<T>(_ value: T?, _ member: String, _ scanner: JSONScanner) throws -> T {
        guard let value else { throw scanner.failure("missing required field '\(member)'", member: member) }
        return value
    }

    /// The page as the CommandService writes it (tests and tools; the rebuild only reads).
    func writeJSON(to writer: inout JSONWriter) {
        CommandsAPI.ReadAllResponse(
            events: events.map { event in
                CommandsAPI.StoredEvent(
                    eventId: event.eventId, streamId: event.streamId, type: event.type, schemaVersion: event.schemaVersion,
                    streamVersion: event.streamVersion, position: event.position, recordedAt: iso8601(milliseconds: event.recordedAt),
                    data: RawJSON(unchecked: event.data))
            }, nextPosition: nextPosition, headPosition: headPosition
        ).writeJSON(to: &writer)
    }
}
