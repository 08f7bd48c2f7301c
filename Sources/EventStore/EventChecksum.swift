import Checksums

/// The checksum stored with each event: CRC-32C over every field of the stored row, position and
/// stream version included, each field length-prefixed so that no two rows share an encoding.
///
/// SQLite checksums neither its pages nor (past the WAL's frame checksums) what it reads back, so
/// a flipped bit in the database file would otherwise be served as fact: an amount, a version or
/// another stream's id. Every read checks it (`SQLiteEventStore.recordedEvent`), and so does
/// `cqrs verify`.
public enum EventChecksum {
    /// Integers go in as 8 bytes little-endian and texts as their UTF-8, each after its length
    /// (a nil text is the length UInt64.max alone): no allocation per field, as every read of an
    /// event pays for this.
    public static func of(_ event: RecordedEvent) -> Int64 {
        var crc: UInt32 = 0
        func add(_ bytes: UnsafeRawBufferPointer) {
            var length = UInt64(bytes.count).littleEndian
            withUnsafeBytes(of: &length) { crc = CRC32C.checksum($0, continuing: crc) }
            crc = CRC32C.checksum(bytes, continuing: crc)
        }
        func add(_ text: String?) {
            guard var text else {
                var absent = UInt64.max
                withUnsafeBytes(of: &absent) { crc = CRC32C.checksum($0, continuing: crc) }
                return
            }
            text.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        }
        func add(_ number: Int64) {
            var value = number.littleEndian
            withUnsafeBytes(of: &value) { add($0) }
        }
        add(event.eventId)
        add(event.streamId)
        add(event.streamVersion)
        add(event.position)
        add(event.type)
        add(Int64(event.schemaVersion))
        add(event.recordedAt)
        add(event.correlationId)
        add(event.causationId)
        event.data.withUnsafeBytes { add($0) }
        // Added with the column (schema version 5): only when present, so the rows stored
        // before it, and every row without a trace, keep the checksum they were stored with.
        if let traceParent = event.traceParent { add(traceParent) }
        return Int64(crc)
    }

    /// The error for a row whose checksum fails: it is never served.
    public static func damaged(_ event: RecordedEvent, stored: Int64) -> EventStoreError {
        .dataLoss(
            "the event at position \(event.position) (as read: \(event.streamId) version \(event.streamVersion), id \(event.eventId)) fails its checksum (stored \(stored), computed \(EventChecksum.of(event))): the database file is damaged; restore it from a backup, and run cqrs verify"
        )
    }
}
