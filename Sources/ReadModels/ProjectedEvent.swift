/// An event on its way into the read models, whether it came from a broker record or from the
/// CommandService's history: the stored event's identity and order, and its JSON.
///
/// It mirrors the write side's `RecordedEvent` on purpose: the read side knows events only as
/// they arrive over the wire, and does not link the write side's store.
public struct ProjectedEvent: Sendable, Hashable {
    public var eventId: String
    public var streamId: String
    public var type: String
    public var schemaVersion: Int
    /// 1 for the stream's first event.
    public var streamVersion: Int64
    /// The event store's global position.
    public var position: Int64
    /// Milliseconds since the Unix epoch, UTC.
    public var recordedAt: Int64
    public var data: [UInt8]

    public init(
        eventId: String, streamId: String, type: String, schemaVersion: Int, streamVersion: Int64, position: Int64, recordedAt: Int64,
        data: [UInt8]
    ) {
        self.eventId = eventId
        self.streamId = streamId
        self.type = type
        self.schemaVersion = schemaVersion
        self.streamVersion = streamVersion
        self.position = position
        self.recordedAt = recordedAt
        self.data = data
    }
}

/// A broker record as the projection receives it: where it sits in its partition, and either the
/// event it carries or why it could not be read as one.
public struct IncomingRecord: Sendable {
    public var offset: Int64
    public var key: String?
    public var value: [UInt8]?
    public var event: Result<ProjectedEvent, RecordError>

    public init(offset: Int64, key: String?, value: [UInt8]?, event: Result<ProjectedEvent, RecordError>) {
        self.offset = offset
        self.key = key
        self.value = value
        self.event = event
    }

    /// Reads the CloudEvents binary-mode headers the CommandService's relay writes (`ce_id`,
    /// `ce_type`, `ce_subject` = stream id, `ce_streamversion`, `ce_position`,
    /// `ce_schemaversion`). `recordedAt` is the event's time, from its `ce_time` (the caller
    /// parses it): not the record's timestamp, which on an event topic is the broker's append time.
    public init(offset: Int64, key: String?, value: [UInt8]?, headers: [String: String], recordedAt: Int64) {
        self.offset = offset
        self.key = key
        self.value = value
        func header(_ name: String) throws(RecordError) -> String {
            guard let value = headers[name], !value.isEmpty else { throw RecordError("header \(name) is missing") }
            return value
        }
        func number(_ name: String) throws(RecordError) -> Int64 {
            let text = try header(name)
            guard let number = Int64(text), number >= 1 else { throw RecordError("header \(name) is not a positive integer: \(text)") }
            return number
        }
        do throws(RecordError) {
            guard let value else { throw RecordError("the record has no value") }
            event = .success(
                ProjectedEvent(
                    eventId: try header("ce_id"), streamId: try header("ce_subject"), type: try header("ce_type"),
                    schemaVersion: Int(try number("ce_schemaversion")), streamVersion: try number("ce_streamversion"),
                    position: try number("ce_position"), recordedAt: recordedAt, data: value))
        } catch {
            event = .failure(error)
        }
    }
}

/// Why a record is not a readable event.
public struct RecordError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
