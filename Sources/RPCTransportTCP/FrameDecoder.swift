public import NIOCore
public import RPCCore

/// What the frame decoder passes up the pipeline.
public enum FrameEvent: Sendable, Hashable {
    /// A whole frame.
    case frame(Frame)
    /// A frame over `maxFrameBytes` (but within `maxSkippableFrameBytes`) whose payload was
    /// skipped as it arrived, never buffered.
    case oversizedFrame(type: FrameType, streamID: UInt32, length: Int)
    /// The bytes read so far end inside a frame: the partial-frame timer should run.
    case partialFrame
}

/// A frame too large to skip: the connection cannot go on.
public struct FrameTooLargeError: Error, Hashable {
    public let length: Int
    public let limit: Int
}

/// Splits the byte stream into frames (see Protocols/WIRE.md):
///
///     +-------------+--------+---------+-------------+--------------------+
///     | length: u32 | type:u8| flags:u8| stream: u32 | payload (length B) |
///     +-------------+--------+---------+-------------+--------------------+
///
/// A partial frame is left in the buffer (`needMoreData`) and reported as `.partialFrame` so the
/// connection can time it out. A frame over `maxFrameBytes` is skipped by its length as its bytes
/// arrive, so an oversized message costs the stream it was sent on, not the connection or its
/// memory; one over `maxSkippableFrameBytes` throws ``FrameTooLargeError``.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = FrameEvent

    private struct Skipping {
        let type: FrameType
        let streamID: UInt32
        let length: Int
        var remaining: Int
    }

    private let maxFrameBytes: Int
    private let maxSkippableFrameBytes: Int
    private var skipping: Skipping?

    public init(limits: ConnectionLimits) {
        maxFrameBytes = limits.maxFrameBytes
        maxSkippableFrameBytes = max(limits.maxFrameBytes, limits.maxSkippableFrameBytes)
    }

    /// One step of decoding, as a pure function of the bytes so far (what the pipeline handler
    /// and the fuzzer both drive).
    public enum Step: Equatable, Sendable {
        /// Something to pass on; call again.
        case event(FrameEvent)
        /// Bytes were consumed (an oversized frame's skipping began) with nothing to pass on; call again.
        case progress
        /// Wait for more bytes; `partial` when the bytes so far end inside a frame.
        case needMoreData(partial: Bool)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch try step(&buffer) {
        case .event(let event):
            context.fireChannelRead(wrapInboundOut(event))
            return .continue
        case .progress:
            return .continue
        case .needMoreData(let partial):
            if partial { context.fireChannelRead(wrapInboundOut(.partialFrame)) }
            return .needMoreData
        }
    }

    /// Decodes from the front of `buffer`, consuming only what it decodes or skips.
    public mutating func step(_ buffer: inout ByteBuffer) throws -> Step {
        if var skip = skipping {
            let n = min(skip.remaining, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: n)
            skip.remaining -= n
            guard skip.remaining == 0 else {
                skipping = skip
                return .needMoreData(partial: true)
            }
            skipping = nil
            return .event(.oversizedFrame(type: skip.type, streamID: skip.streamID, length: skip.length))
        }
        guard buffer.readableBytes >= Frame.headerSize,
            let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let type = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self),
            let flags = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt8.self),
            let streamID = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt32.self)
        else {
            // Not even a header yet; wait, without consuming anything.
            return .needMoreData(partial: buffer.readableBytes > 0)
        }
        let payloadLength = Int(length)
        if payloadLength > maxFrameBytes {
            guard payloadLength <= maxSkippableFrameBytes else {
                throw FrameTooLargeError(length: payloadLength, limit: maxSkippableFrameBytes)
            }
            buffer.moveReaderIndex(forwardBy: Frame.headerSize)
            skipping = Skipping(
                type: FrameType(rawValue: type), streamID: streamID, length: payloadLength, remaining: payloadLength)
            return .progress
        }
        guard buffer.readableBytes >= Frame.headerSize + payloadLength else {
            // The header is here but not the whole payload; wait, without consuming anything.
            return .needMoreData(partial: true)
        }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize)
        let payload = buffer.readBytes(length: payloadLength) ?? []
        return .event(.frame(Frame(type: FrameType(rawValue: type), flags: FrameFlags(rawValue: flags), streamID: streamID, payload: payload)))
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        // At EOF a partial frame can never complete; what is whole is still delivered.
        let state = try decode(context: context, buffer: &buffer)
        if state == .needMoreData { buffer.moveReaderIndex(to: buffer.writerIndex) }
        return state
    }
}

extension Frame {
    /// Appends this frame's bytes to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(streamID)
        buffer.writeBytes(payload)
    }
}
