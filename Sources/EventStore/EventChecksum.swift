import Checksums

/// The checksum stored with each event: CRC-32C over every field of the stored row, position and
/// stream version included, each field length-prefixed so that no two rows share an encoding.
///
/// SQLite checksums neither its pages nor (past the WAL's frame checksums) what it reads back, so
/// a flipped bit in the database file would otherwise be served as fact: an amount, a version or
/// another stream's id. Every read checks it (`SQLiteEventStore.recordedEvent`), and so does
/// `cqrs verify`.
enum EventChecksum {
    static func of(_ event: RecordedEvent) -> Int64 {
        var crc: UInt32 = 0
        func add(_ bytes: [UInt8]) {
            var length = UInt64(bytes.count).littleEndian
            withUnsafeBytes(of: &length) { crc = CRC32C.checksum($0, continuing: crc) }
            crc = CRC32C.checksum(bytes, continuing: crc)
        }
        func add(_ text: String?) {
            guard let text else { return add([0xFF]) }  // distinct from "" (length 0)
            add(Array(text.utf8))
        }
        func add(_ number: Int64) { add(Array(String(number).utf8)) }
        add(event.eventId)
        add(event.streamId)
        add(event.streamVersion)
        add(event.position)
        add(event.type)
        add(Int64(event.schemaVersion))
        add(event.recordedAt)
        add(event.correlationId)
        add(event.causationId)
        add(event.data)
        return Int64(crc)
    }
}
