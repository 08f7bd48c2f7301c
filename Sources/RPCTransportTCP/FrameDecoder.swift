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
public struct FrameDecoder {
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

    /// One step of decoding, as a pure function of the bytes so far (what ``FrameReader`` and
    /// the fuzzer both drive).
    public enum Step: Equatable, Sendable {
        /// Something to pass on; call again.
        case event(FrameEvent)
        /// Bytes were consumed (an oversized frame's skipping began) with nothing to pass on; call again.
        case progress
        /// Wait for more bytes; `partial` when the bytes so far end inside a frame.
        case needMoreData(partial: Bool)
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
}

/// The pipeline handler that turns bytes read into ``FrameEvent``s with a ``FrameDecoder``.
///
/// Why not NIO's `ByteToMessageHandler`: it is generic over the decoder, and its code, compiled in
/// NIO's module, is not specialized for ours: every read looked up generic metadata at run time
/// and went through its buffering state machine, about 3,400 of a unary call's 61,000
/// instructions on the server (callgrind, `Scripts/bench instructions`). This does the same
/// for the one decoder it serves: a read is decoded in place when nothing is buffered, and only
/// the tail of a frame that has not yet arrived whole is kept.
public final class FrameReader: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = FrameEvent

    private var decoder: FrameDecoder
    /// Where decoded events go when not through the pipeline (see `init(limits:deliver:)`).
    private let deliver: ((FrameEvent, ChannelHandlerContext) -> Void)?
    /// Bytes of a frame not yet whole (nil when nothing is kept).
    private var kept: ByteBuffer?
    /// Set while decoding: a read that arrives meanwhile (re-entrantly) is only kept.
    private var decoding = false
    /// Set once the stream cannot be decoded further (a frame over the skippable limit): later
    /// bytes are dropped, as the connection is closing.
    private var failed = false

    /// Events are fired down the pipeline, to the next inbound handler.
    public init(limits: ConnectionLimits) {
        decoder = FrameDecoder(limits: limits)
        deliver = nil
    }

    /// Events are handed to `deliver`, on the channel's event loop, with this handler's context.
    ///
    /// Why: through the pipeline each event is wrapped in a `NIOAny`, which boxes it (a frame
    /// does not fit its inline storage) and casts it back with a dynamic cast, about 700
    /// instructions a frame, two frames a unary call on each side (callgrind, echo).
    init(limits: ConnectionLimits, deliver: @escaping (FrameEvent, ChannelHandlerContext) -> Void) {
        decoder = FrameDecoder(limits: limits)
        self.deliver = deliver
    }

    private func emit(_ event: FrameEvent, context: ChannelHandlerContext) {
        if let deliver { deliver(event, context) } else { context.fireChannelRead(wrapInboundOut(event)) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard !failed else { return }
        if kept == nil {
            kept = bytes
        } else {
            var incoming = bytes
            kept!.writeBuffer(&incoming)
        }
        guard !decoding else { return }
        decodeKept(context: context, atEnd: false)
    }

    /// Delivers the whole frames still kept when the connection ends; a frame cut off by the end
    /// can never complete and is dropped.
    public func channelInactive(context: ChannelHandlerContext) {
        if !failed, !decoding, kept != nil { decodeKept(context: context, atEnd: true) }
        kept = nil
        context.fireChannelInactive()
    }

    private func decodeKept(context: ChannelHandlerContext, atEnd: Bool) {
        decoding = true
        defer { decoding = false }
        while var buffer = kept {
            // Unshared while decoding, so stepping moves indices without copying the bytes.
            kept = nil
            let step: FrameDecoder.Step
            do {
                step = try decoder.step(&buffer)
            } catch {
                failed = true
                context.fireErrorCaught(error)
                return
            }
            // Kept before the event is delivered: a read it causes (re-entrantly) appends here.
            let unread = buffer.readableBytes
            kept = unread > 0 ? buffer : nil
            switch step {
            case .event(let event):
                emit(event, context: context)
            case .progress:
                // An oversized frame's skipping began: step again even with no bytes left, so
                // that its partial frame is reported (and timed out) like any other.
                if kept == nil { kept = ByteBuffer() }
            case .needMoreData(let partial):
                if partial && !atEnd { emit(.partialFrame, context: context) }
                if (kept?.readableBytes ?? 0) > unread { continue }
                kept = Self.compacted(kept)
                return
            }
        }
    }

    /// Nothing when all is consumed; else the unread bytes moved to the front once the read ones
    /// are the larger part, so a long run of partial reads does not grow the buffer.
    private static func compacted(_ buffer: ByteBuffer?) -> ByteBuffer? {
        guard var buffer, buffer.readableBytes > 0 else { return nil }
        if buffer.readerIndex > 1024 && buffer.readerIndex > buffer.readableBytes { buffer.discardReadBytes() }
        return buffer
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
