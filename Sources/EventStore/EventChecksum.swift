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
    /// (a nil text is the length UInt64.max alone). The fields are gathered in a buffer on the
    /// stack and checksummed together: CRC-32C runs on, so the value is the same as field by
    /// field, where the ~20 calls of a row cost more than the checksum itself (every read of an
    /// event pays for this: a rebuild's history, an aggregate's load, the relay).
    public static func of(_ event: RecordedEvent) -> Int64 {
        withUnsafeTemporaryAllocation(byteCount: 512, alignment: 8) { buffer in
            var row = Staging(buffer: buffer)
            row.add(event.eventId)
            row.add(event.streamId)
            row.add(event.streamVersion)
            row.add(event.position)
            row.add(event.type)
            row.add(Int64(event.schemaVersion))
            row.add(event.recordedAt)
            row.add(event.correlationId)
            row.add(event.causationId)
            event.data.withUnsafeBytes { row.add($0) }
            // Added with the column (schema version 5): only when present, so the rows stored
            // before it, and every row without a trace, keep the checksum they were stored with.
            if let traceParent = event.traceParent { row.add(traceParent) }
            return Int64(row.finish())
        }
    }

    /// A row's fields gathered for the checksum (a struct, not nested functions: variables
    /// those capture are checked for exclusive access at run time on every use).
    private struct Staging {
        let buffer: UnsafeMutableRawBufferPointer
        var used = 0
        var crc: UInt32 = 0

        mutating func flush() {
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[..<used]), continuing: crc)
            used = 0
        }

        mutating func put(_ bytes: UnsafeRawBufferPointer) {
            if bytes.count > buffer.count - used {
                flush()
                guard bytes.count <= buffer.count else {
                    crc = CRC32C.checksum(bytes, continuing: crc)
                    return
                }
            }
            guard let source = bytes.baseAddress, let target = buffer.baseAddress else { return }
            (target + used).copyMemory(from: source, byteCount: bytes.count)
            used += bytes.count
        }

        mutating func word(_ value: UInt64) {
            guard buffer.count - used >= 8 else { return withUnsafeBytes(of: value.littleEndian) { put($0) } }
            buffer.storeBytes(of: value.littleEndian, toByteOffset: used, as: UInt64.self)
            used += 8
        }

        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            word(UInt64(bytes.count))
            put(bytes)
        }

        mutating func add(_ text: String?) {
            guard var text else { return word(UInt64.max) }
            text.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        }

        mutating func add(_ number: Int64) {
            word(8)
            word(UInt64(bitPattern: number))
        }

        mutating func finish() -> UInt32 {
            flush()
            return crc
        }
    }

    /// The error for a row whose checksum fails: it is never served.
    public static func damaged(_ event: RecordedEvent, stored: Int64) -> EventStoreError {
        .dataLoss(
            "the event at position \(event.position) (as read: \(event.streamId) version \(event.streamVersion), id \(event.eventId)) fails its checksum (stored \(stored), computed \(EventChecksum.of(event))): the database file is damaged; restore it from a backup, and run cqrs verify"
        )
    }
}
