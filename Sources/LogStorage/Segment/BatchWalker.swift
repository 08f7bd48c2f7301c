/// Walks the batches of a log file from a byte position, reading in large chunks.
///
/// It stops cleanly at `end`; anything that is not a whole, well-framed batch before `end` throws
/// `BatchWalker.Invalid` with the position, so callers decide whether that is a torn tail to cut
/// or corruption to report.
struct BatchWalker {
    struct Invalid: Error {
        var position: Int64
        var reason: BatchDecodingError
    }

    /// A batch found by the walker, with its bytes.
    struct Found {
        var header: BatchHeader
        var position: Int64
        var bytes: ArraySlice<UInt8>
    }

    let file: any StorageFile
    private(set) var position: Int64
    let end: Int64
    private let chunkSize: Int
    private var buffer: [UInt8] = []
    private var bufferStart: Int64 = 0

    init(file: any StorageFile, from position: Int64, to end: Int64, chunkSize: Int = 1 << 20) {
        self.file = file
        self.position = position
        self.end = end
        self.chunkSize = chunkSize
    }

    /// The next batch, checked by CRC when `verify` is set; nil at `end`.
    mutating func next(verify: Bool) throws -> Found? {
        guard position < end else { return nil }
        let header: BatchHeader
        do {
            header = try BatchHeader(try bytes(count: RecordBatch.headerSize))
        } catch let error as BatchDecodingError {
            throw Invalid(position: position, reason: error)
        }
        guard position + Int64(header.totalSize) <= end else { throw Invalid(position: position, reason: .truncated) }
        let whole = try bytes(count: header.totalSize)
        if verify {
            guard whole.count == header.totalSize else { throw Invalid(position: position, reason: .truncated) }
            if RecordBatch.checksum(body: whole.dropFirst(RecordBatch.crcStart), baseOffset: header.baseOffset) != header.crc {
                throw Invalid(position: position, reason: .checksumMismatch)
            }
        }
        let found = Found(header: header, position: position, bytes: whole)
        position += Int64(header.totalSize)
        return found
    }

    /// Up to `count` bytes at `position`, refilling the buffer as needed.
    private mutating func bytes(count: Int) throws -> ArraySlice<UInt8> {
        let startInBuffer = Int(position - bufferStart)
        if startInBuffer < 0 || startInBuffer + count > buffer.count {
            let wanted = Int(min(Int64(max(count, chunkSize)), end - position))
            buffer = try file.read(at: position, count: wanted)
            bufferStart = position
            return buffer[0..<min(count, buffer.count)]
        }
        return buffer[startInBuffer..<(startInBuffer + count)]
    }
}
