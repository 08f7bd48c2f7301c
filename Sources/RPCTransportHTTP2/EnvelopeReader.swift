/// Splits a request body into gRPC or Connect envelopes: a flags byte, a 4-byte big-endian
/// length, the message. Bytes arrive in any chunks; a message is handed out once whole.
///
/// The length is checked against the limit as soon as the prefix is in, so an oversized
/// message is refused before its bytes are buffered.
struct EnvelopeReader {
    struct Envelope: Equatable {
        var flags: UInt8
        var payload: [UInt8]
    }

    enum Failure: Error, Equatable {
        case tooLarge(length: Int, limit: Int)
    }

    static let compressedFlag: UInt8 = 0x01
    /// Connect's end-of-stream envelope (only servers send it).
    static let endStreamFlag: UInt8 = 0x02

    let maxMessageBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// Bytes received but not yet part of a whole message.
    var bufferedBytes: Int { buffer.count - start }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    /// The next whole envelope, nil until one is in.
    mutating func next() throws(Failure) -> Envelope? {
        guard buffer.count - start >= 5 else { return nil }
        let length = Int(buffer[start + 1]) << 24 | Int(buffer[start + 2]) << 16 | Int(buffer[start + 3]) << 8 | Int(buffer[start + 4])
        guard length <= maxMessageBytes else { throw .tooLarge(length: length, limit: maxMessageBytes) }
        guard buffer.count - start - 5 >= length else { return nil }
        let envelope = Envelope(flags: buffer[start], payload: Array(buffer[(start + 5)..<(start + 5 + length)]))
        start += 5 + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 64 * 1024, start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        return envelope
    }

    /// The 5-byte prefix and the message, as one chunk to send.
    static func frame(_ payload: [UInt8], flags: UInt8 = 0) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(payload.count + 5)
        let length = UInt32(payload.count)
        bytes.append(flags)
        bytes.append(UInt8(truncatingIfNeeded: length >> 24))
        bytes.append(UInt8(truncatingIfNeeded: length >> 16))
        bytes.append(UInt8(truncatingIfNeeded: length >> 8))
        bytes.append(UInt8(truncatingIfNeeded: length))
        bytes.append(contentsOf: payload)
        return bytes
    }
}
