import CCompressionCodecs

/// The codecs of a record batch's attributes (bits 0–2).
public enum CompressionCodec: Int16, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    /// Kafka's name for it (`compression.type`).
    public var description: String {
        switch self {
        case .none: return "none"
        case .gzip: return "gzip"
        case .snappy: return "snappy"
        case .lz4: return "lz4"
        case .zstd: return "zstd"
        }
    }
}

/// Why a compressed payload could not be opened.
public enum CompressionError: Error, Equatable, Sendable, CustomStringConvertible {
    case corrupt(CompressionCodec, String)
    /// The payload expands past the bound the caller set (a batch over the size limit, or a bomb).
    case tooLarge(CompressionCodec, limit: Int)

    public var description: String {
        switch self {
        case .corrupt(let codec, let why): return "\(codec) payload does not decompress: \(why)"
        case .tooLarge(let codec, let limit): return "\(codec) payload expands past \(limit) bytes"
        }
    }
}

/// Compression and decompression with the libraries every Kafka client uses (zlib, snappy,
/// lz4's frame format, zstd), so what a client compresses is read exactly as Kafka reads it.
/// Decompression is bounded: output never grows past `limit`, whatever the input claims.
public enum Compression {
    public static func decompress(_ input: ArraySlice<UInt8>, codec: CompressionCodec, limit: Int) throws(CompressionError) -> [UInt8] {
        switch codec {
        case .none:
            guard input.count <= limit else { throw .tooLarge(codec, limit: limit) }
            return Array(input)
        case .gzip: return try inflate(input, limit: limit)
        case .snappy: return try unsnappy(input, limit: limit)
        case .lz4: return try unlz4(input, limit: limit)
        case .zstd: return try unzstd(input, limit: limit)
        }
    }

    public static func compress(_ input: [UInt8], codec: CompressionCodec) -> [UInt8] {
        switch codec {
        case .none: return input
        case .gzip: return deflate(input)
        case .snappy:
            var length = snappy_max_compressed_length(input.count)
            var output = [UInt8](repeating: 0, count: length)
            let status = input.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { target in
                    source.withMemoryRebound(to: CChar.self) { source in
                        target.withMemoryRebound(to: CChar.self) { target in
                            snappy_compress(source.baseAddress, source.count, target.baseAddress, &length)
                        }
                    }
                }
            }
            precondition(status == SNAPPY_OK, "snappy_compress failed on a buffer of its own bound")
            return Array(output[..<length])
        case .lz4:
            let bound = LZ4F_compressFrameBound(input.count, nil)
            var output = [UInt8](repeating: 0, count: bound)
            let written = input.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { LZ4F_compressFrame($0.baseAddress, bound, source.baseAddress, source.count, nil) }
            }
            precondition(LZ4F_isError(written) == 0, "LZ4F_compressFrame failed on a buffer of its own bound")
            return Array(output[..<written])
        case .zstd:
            let bound = ZSTD_compressBound(input.count)
            var output = [UInt8](repeating: 0, count: bound)
            let written = input.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { ZSTD_compress($0.baseAddress, bound, source.baseAddress, source.count, 3) }
            }
            precondition(ZSTD_isError(written) == 0, "ZSTD_compress failed on a buffer of its own bound")
            return Array(output[..<written])
        }
    }

    // MARK: gzip

    private static let chunk = 64 << 10

    private static func inflate(_ input: ArraySlice<UInt8>, limit: Int) throws(CompressionError) -> [UInt8] {
        var stream = z_stream()
        // 15 + 32: a zlib or gzip header, detected (Kafka's gzip is a gzip stream).
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt(.gzip, "inflateInit failed")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        var input = Array(input)
        let result: Int32 = input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while true {
                let status = buffer.withUnsafeMutableBufferPointer { target -> Int32 in
                    stream.next_out = target.baseAddress
                    stream.avail_out = UInt32(target.count)
                    return CCompressionCodecs.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk - Int(stream.avail_out)
                if output.count + produced > limit { return Z_BUF_ERROR - 100 }
                output.append(contentsOf: buffer[..<produced])
                if status == Z_STREAM_END { return Z_OK }
                if status != Z_OK { return status }
                if produced == 0 && stream.avail_in == 0 { return Z_DATA_ERROR }
            }
        }
        if result == Z_BUF_ERROR - 100 { throw .tooLarge(.gzip, limit: limit) }
        guard result == Z_OK else { throw .corrupt(.gzip, "zlib status \(result)") }
        return output
    }

    private static func deflate(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        // 15 + 16: a gzip header and trailer, as Kafka's clients write.
        precondition(
            deflateInit2_(
                &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
                == Z_OK)
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var input = input
        let written = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target -> Int in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                precondition(CCompressionCodecs.deflate(&stream, Z_FINISH) == Z_STREAM_END)
                return target.count - Int(stream.avail_out)
            }
        }
        return Array(output[..<written])
    }

    // MARK: snappy

    /// Raw snappy (librdkafka, kafka-python) or snappy-java's framing (Java clients):
    /// `\x82SNAPPY\0`, two int32s, then blocks each prefixed by its int32 length.
    private static func unsnappy(_ input: ArraySlice<UInt8>, limit: Int) throws(CompressionError) -> [UInt8] {
        let magic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
        guard input.count >= 16, input.prefix(8).elementsEqual(magic) else { return try unsnappyBlock(input, limit: limit) }
        var output: [UInt8] = []
        var position = input.startIndex + 16
        while position < input.endIndex {
            guard input.endIndex - position >= 4 else { throw .corrupt(.snappy, "a truncated block length") }
            let length = input[position..<position + 4].reduce(0) { $0 << 8 | Int($1) }
            position += 4
            guard length <= input.endIndex - position else { throw .corrupt(.snappy, "a block longer than the payload") }
            output += try unsnappyBlock(input[position..<position + length], limit: limit - output.count)
            position += length
        }
        return output
    }

    private static func unsnappyBlock(_ input: ArraySlice<UInt8>, limit: Int) throws(CompressionError) -> [UInt8] {
        let input = Array(input)
        var length = 0
        let known = input.withUnsafeBufferPointer { source in
            source.withMemoryRebound(to: CChar.self) { snappy_uncompressed_length($0.baseAddress, $0.count, &length) }
        }
        guard known == SNAPPY_OK else { throw .corrupt(.snappy, "no valid length header") }
        guard length <= limit else { throw .tooLarge(.snappy, limit: limit) }
        var output = [UInt8](repeating: 0, count: length)
        let status = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                source.withMemoryRebound(to: CChar.self) { source in
                    target.withMemoryRebound(to: CChar.self) { target in
                        snappy_uncompress(source.baseAddress, source.count, target.baseAddress, &length)
                    }
                }
            }
        }
        guard status == SNAPPY_OK else { throw .corrupt(.snappy, "snappy status \(status.rawValue)") }
        return Array(output[..<length])
    }

    // MARK: lz4 (frame format)

    private static func unlz4(_ input: ArraySlice<UInt8>, limit: Int) throws(CompressionError) -> [UInt8] {
        var context: OpaquePointer?
        guard LZ4F_isError(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))) == 0, let context else {
            throw .corrupt(.lz4, "no decompression context")
        }
        defer { LZ4F_freeDecompressionContext(context) }
        let input = Array(input)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        var consumed = 0
        while true {
            var sourceSize = input.count - consumed
            var targetSize = chunk
            let hint = input.withUnsafeBytes { source in
                buffer.withUnsafeMutableBytes { target in
                    LZ4F_decompress(context, target.baseAddress, &targetSize, source.baseAddress! + consumed, &sourceSize, nil)
                }
            }
            if LZ4F_isError(hint) != 0 { throw .corrupt(.lz4, String(cString: LZ4F_getErrorName(hint))) }
            consumed += sourceSize
            guard output.count + targetSize <= limit else { throw .tooLarge(.lz4, limit: limit) }
            output.append(contentsOf: buffer[..<targetSize])
            if hint == 0 { return output }
            if sourceSize == 0 && targetSize == 0 { throw .corrupt(.lz4, "the frame ends early") }
        }
    }

    // MARK: zstd

    private static func unzstd(_ input: ArraySlice<UInt8>, limit: Int) throws(CompressionError) -> [UInt8] {
        guard let stream = ZSTD_createDStream() else { throw .corrupt(.zstd, "no decompression stream") }
        defer { ZSTD_freeDStream(stream) }
        ZSTD_initDStream(stream)
        let input = Array(input)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        var position = 0
        var finished = false
        while !finished || position < input.count {
            let (status, produced, read): (Int, Int, Int) = input.withUnsafeBytes { source in
                buffer.withUnsafeMutableBytes { target in
                    var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: position)
                    var outBuffer = ZSTD_outBuffer(dst: target.baseAddress, size: target.count, pos: 0)
                    let status = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                    return (status, outBuffer.pos, inBuffer.pos)
                }
            }
            if ZSTD_isError(status) != 0 { throw .corrupt(.zstd, String(cString: ZSTD_getErrorName(status))) }
            guard output.count + produced <= limit else { throw .tooLarge(.zstd, limit: limit) }
            output.append(contentsOf: buffer[..<produced])
            finished = status == 0
            if read == position && produced == 0 {
                if finished { break }
                throw .corrupt(.zstd, "the frame ends early")
            }
            position = read
        }
        return output
    }
}
