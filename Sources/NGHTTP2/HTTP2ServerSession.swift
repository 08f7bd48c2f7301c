import CNGHTTP2

/// One header field, as bytes made text. HTTP/2 names are lowercase; pseudo-headers start with ':'.
public struct HTTP2Header: Hashable, Sendable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The limits a server session enforces and advertises in its SETTINGS.
public struct HTTP2SessionLimits: Sendable, Hashable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2 refuses streams above it with RST_STREAM(REFUSED_STREAM).
    public var maxConcurrentStreams: Int = 1024
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the request header fields' bytes (names + values + 32 each,
    /// as RFC 9113 counts them). Past it the request is reported `headersTooLarge` and later
    /// fields are dropped, so a hostile header block costs no memory.
    public var maxHeaderListBytes: Int = 8 * 1024
    /// SETTINGS_INITIAL_WINDOW_SIZE: how many request body bytes a stream may send before we consume them.
    public var streamWindowBytes: Int = 1 << 20
    /// The connection's receive window (all streams together).
    public var connectionWindowBytes: Int = 16 << 20
    /// SETTINGS_MAX_FRAME_SIZE we accept (16 KiB is HTTP/2's floor and every client's default).
    public var maxFrameBytes: Int = 16 * 1024

    public init() {}
    public static var defaults: HTTP2SessionLimits { HTTP2SessionLimits() }
}

/// An HTTP/2 error code (RFC 9113 §7) for RST_STREAM and GOAWAY.
public struct HTTP2ErrorCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = HTTP2ErrorCode(rawValue: 0x0)
    public static let protocolError = HTTP2ErrorCode(rawValue: 0x1)
    public static let internalError = HTTP2ErrorCode(rawValue: 0x2)
    public static let refusedStream = HTTP2ErrorCode(rawValue: 0x7)
    public static let cancel = HTTP2ErrorCode(rawValue: 0x8)
    public static let enhanceYourCalm = HTTP2ErrorCode(rawValue: 0xb)
}

/// A failure of the whole session: the connection cannot go on (nghttp2 has queued a GOAWAY
/// saying why when it could; send what `takeOutput()` returns, then close).
public struct HTTP2SessionError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var description: String

    init(_ code: Int32, _ operation: String) {
        self.code = code
        self.description = "\(operation): \(String(cString: nghttp2_strerror(Int32(code))))"
    }
}

/// What a server session reports while it reads: requests, their bodies, their ends.
/// Every method is called from inside ``HTTP2ServerSession/receive(_:)`` (or `takeOutput()` for
/// stream closes caused by our own sends), on the thread that called it.
public protocol HTTP2ServerSessionDelegate: AnyObject {
    /// A request's header block is complete. `headersTooLarge`: the block passed
    /// `maxHeaderListBytes`; `headers` holds what fitted (and a short `content-type`).
    func session(
        _ session: HTTP2ServerSession, receivedRequest streamID: Int32, headers: [HTTP2Header], headersTooLarge: Bool,
        endStream: Bool)
    /// Request body bytes. They count against the stream's window until ``HTTP2ServerSession/consume(streamID:bytes:)``.
    func session(_ session: HTTP2ServerSession, receivedData bytes: UnsafeRawBufferPointer, streamID: Int32)
    /// The client half-closed the stream (END_STREAM on DATA or trailers).
    func session(_ session: HTTP2ServerSession, receivedEndStream streamID: Int32)
    /// The stream is gone: `errorCode` is `.noError` when it ended normally, else the RST_STREAM code.
    func session(_ session: HTTP2ServerSession, closedStream streamID: Int32, errorCode: HTTP2ErrorCode)
    /// A chunk queued with ``HTTP2ServerSession/sendData(streamID:_:)`` was taken whole into the
    /// output: flow control let it go. Callers use it to grant the producer more.
    func session(_ session: HTTP2ServerSession, sentChunk streamID: Int32)
    /// The client acknowledged one of our PINGs.
    func sessionReceivedPingAck(_ session: HTTP2ServerSession)
    /// The client's connection preface and first SETTINGS arrived.
    func sessionReceivedSettings(_ session: HTTP2ServerSession)
}

/// A server-side HTTP/2 session over libnghttp2, without I/O: feed it the bytes read from the
/// connection with ``receive(_:)``, send what ``takeOutput()`` returns, and answer requests with
/// ``respond(streamID:headers:endStream:)``, ``sendData(streamID:_:)`` and ``finish(streamID:trailers:)``.
///
/// nghttp2 does the protocol: the connection preface, SETTINGS and their ACKs, HPACK, stream
/// states, flow-control windows, PING answers, and the checks that turn a peer's protocol error
/// into RST_STREAM or GOAWAY. This type owns the memory nghttp2 reads from (the body chunks of
/// each response, until they are sent) and turns its C callbacks into delegate calls.
///
/// Not thread-safe and not `Sendable`: one owner (a NIO channel handler on its event loop)
/// drives it, and every callback happens inside that owner's calls. The delegate is held weakly.
public final class HTTP2ServerSession {
    /// A response body waiting for flow control: chunks in order, and how it ends.
    private struct Outbound {
        var chunks: [[UInt8]] = []
        var offsetInFirst = 0
        /// nil while the body goes on; then the trailers to end with (empty: end with the last DATA).
        var ending: [HTTP2Header]?
        /// nghttp2 asked and we had nothing: it waits for `nghttp2_session_resume_data`.
        var deferred = false
    }

    private struct Inbound {
        var headers: [HTTP2Header] = []
        var headerBytes = 0
        var tooLarge = false
    }

    public weak var delegate: (any HTTP2ServerSessionDelegate)?
    public let limits: HTTP2SessionLimits
    private var session: OpaquePointer?
    private var inbound: [Int32: Inbound] = [:]
    private var outbound: [Int32: Outbound] = [:]

    public init(limits: HTTP2SessionLimits = .defaults) throws {
        self.limits = limits
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw HTTP2SessionError(Int32(NGHTTP2_ERR_NOMEM.rawValue), "nghttp2_session_callbacks_new")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(callbacks)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else {
            throw HTTP2SessionError(Int32(NGHTTP2_ERR_NOMEM.rawValue), "nghttp2_option_new")
        }
        defer { nghttp2_option_del(option) }
        // Windows open only as the application takes the bytes: a request body cannot outrun the call.
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 64 * 1024)

        var session: OpaquePointer?
        let userData = Unmanaged.passUnretained(self).toOpaque()
        let created = nghttp2_session_server_new2(&session, callbacks, userData, option)
        guard created == 0, let session else { throw HTTP2SessionError(created, "nghttp2_session_server_new2") }
        self.session = session

        var settings = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(clamping: limits.maxConcurrentStreams)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(clamping: limits.streamWindowBytes)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: UInt32(clamping: limits.maxFrameBytes)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(clamping: limits.maxHeaderListBytes)),
        ]
        try check(nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count), "nghttp2_submit_settings")
        try check(
            nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: limits.connectionWindowBytes)),
            "nghttp2_session_set_local_window_size")
    }

    deinit {
        if let session { nghttp2_session_del(session) }
    }

    // MARK: Bytes in and out

    /// Processes bytes read from the client. Throws when the session cannot go on; send
    /// ``takeOutput()`` (nghttp2 may have queued GOAWAY) and close.
    public func receive(_ bytes: UnsafeRawBufferPointer) throws {
        guard let session, let base = bytes.baseAddress, bytes.count > 0 else { return }
        let read = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if read < 0 { throw HTTP2SessionError(Int32(read), "receive") }
    }

    /// Everything nghttp2 has to send now (frames, flow-controlled DATA as windows allow), appended
    /// to `output`. Returns false when the session has failed; close after sending what came out.
    @discardableResult
    public func takeOutput(into output: inout [UInt8], limit: Int = .max) -> Bool {
        guard let session else { return false }
        while output.count < limit {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(session, &data)
            if length < 0 { return false }
            guard length > 0, let data else { break }
            output.append(contentsOf: UnsafeBufferPointer(start: data, count: length))
        }
        return true
    }

    /// Whether the session still expects to read (false after GOAWAY both ways with no streams left).
    public var wantsRead: Bool { session.map { nghttp2_session_want_read($0) != 0 } ?? false }
    /// Whether the session has frames to send.
    public var wantsWrite: Bool { session.map { nghttp2_session_want_write($0) != 0 } ?? false }

    // MARK: Requests

    /// Opens `bytes` more of the stream's (and the connection's) receive window: the application
    /// has taken them. Until then the client may send at most the window.
    public func consume(streamID: Int32, bytes: Int) {
        guard let session, bytes > 0 else { return }
        _ = nghttp2_session_consume(session, streamID, bytes)
    }

    // MARK: Responses

    /// Sends the response headers. With `endStream` the response is headers only (as gRPC's
    /// trailers-only); otherwise a body follows through ``sendData(streamID:_:)`` and ``finish(streamID:trailers:)``.
    public func respond(streamID: Int32, headers: [HTTP2Header], endStream: Bool) {
        guard let session else { return }
        if endStream {
            _ = withNameValues(headers) { nghttp2_submit_response(session, streamID, $0, $1, nil) }
            return
        }
        outbound[streamID] = Outbound()
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
        let submitted = withNameValues(headers) { nghttp2_submit_response(session, streamID, $0, $1, &provider) }
        if submitted != 0 { outbound[streamID] = nil }  // the stream is gone: nothing will ever read the body
    }

    /// Queues body bytes on a stream whose response has begun; they leave as the windows allow.
    public func sendData(streamID: Int32, _ bytes: [UInt8]) {
        guard !bytes.isEmpty, outbound[streamID] != nil else { return }
        outbound[streamID]!.chunks.append(bytes)
        resume(streamID)
    }

    /// Ends a response that has a body: after the queued bytes, `trailers` (or, when empty, END_STREAM on the last DATA).
    public func finish(streamID: Int32, trailers: [HTTP2Header]) {
        guard outbound[streamID] != nil else { return }
        outbound[streamID]!.ending = trailers
        resume(streamID)
    }

    /// Resets a stream (RST_STREAM); its queued body is dropped.
    public func reset(streamID: Int32, code: HTTP2ErrorCode) {
        guard let session else { return }
        outbound[streamID] = nil
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, code.rawValue)
    }

    /// GOAWAY: streams above `lastStreamID` were not and will not be processed.
    public func goAway(lastStreamID: Int32, code: HTTP2ErrorCode, debug: String) {
        guard let session else { return }
        let bytes = Array(debug.utf8.prefix(256))
        _ = bytes.withUnsafeBufferPointer {
            nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, code.rawValue, $0.baseAddress, $0.count)
        }
    }

    /// The highest stream id the client has opened, for GOAWAY.
    public var lastClientStreamID: Int32 { session.map { nghttp2_session_get_last_proc_stream_id($0) } ?? 0 }

    /// Sends a PING; ``HTTP2ServerSessionDelegate/sessionReceivedPingAck(_:)`` reports its answer.
    public func ping() {
        guard let session else { return }
        _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// How many response bodies are waiting for flow control (for tests and metrics).
    public var streamsWithQueuedData: Int { outbound.values.filter { !$0.chunks.isEmpty }.count }

    private func resume(_ streamID: Int32) {
        guard let session, outbound[streamID]?.deferred == true else { return }
        outbound[streamID]!.deferred = false
        _ = nghttp2_session_resume_data(session, streamID)
    }

    private func check(_ result: Int32, _ operation: String) throws {
        if result != 0 { throw HTTP2SessionError(result, operation) }
    }

    /// Calls `body` with the headers as nghttp2 name-value pairs pointing into one buffer (nghttp2 copies them).
    private func withNameValues<R>(_ headers: [HTTP2Header], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var bytes: [UInt8] = []
        var spans: [(name: Range<Int>, value: Range<Int>)] = []
        spans.reserveCapacity(headers.count)
        for header in headers {
            let nameStart = bytes.count
            bytes.append(contentsOf: header.name.utf8)
            let valueStart = bytes.count
            bytes.append(contentsOf: header.value.utf8)
            spans.append((nameStart..<valueStart, valueStart..<bytes.count))
        }
        bytes.append(0)  // never empty, so the base address is valid even for empty names and values
        return bytes.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            var pairs = spans.map { span in
                nghttp2_nv(
                    name: base + span.name.lowerBound, value: base + span.value.lowerBound, namelen: span.name.count,
                    valuelen: span.value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return pairs.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    // MARK: Callbacks from nghttp2

    private static func owner(_ userData: UnsafeMutableRawPointer?) -> HTTP2ServerSession {
        Unmanaged<HTTP2ServerSession>.fromOpaque(userData!).takeUnretainedValue()
    }

    private static func install(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
                frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
            else { return 0 }
            HTTP2ServerSession.owner(userData).inbound[frame.pointee.hd.stream_id] = Inbound()
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value else { return 0 }
            let session = HTTP2ServerSession.owner(userData)
            let streamID = frame.pointee.hd.stream_id
            guard var request = session.inbound[streamID] else { return 0 }  // trailers from a client: ignored
            request.headerBytes += nameLength + valueLength + 32
            let header = {
                HTTP2Header(
                    String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
                    String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self))
            }
            if request.headerBytes <= session.limits.maxHeaderListBytes {
                request.headers.append(header())
            } else {
                // Past the limit only a short content-type is still kept, so the refusal can be
                // written in the request's protocol; the fields before the overflow stay.
                request.tooLarge = true
                if nameLength == 12, valueLength <= 256, header().name == "content-type" { request.headers.append(header()) }
            }
            session.inbound[streamID] = request
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            let session = HTTP2ServerSession.owner(userData)
            let streamID = frame.pointee.hd.stream_id
            let endStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            switch UInt32(frame.pointee.hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST, let request = session.inbound.removeValue(forKey: streamID) {
                    session.delegate?.session(
                        session, receivedRequest: streamID, headers: request.headers, headersTooLarge: request.tooLarge,
                        endStream: endStream)
                } else if endStream {
                    session.delegate?.session(session, receivedEndStream: streamID)
                }
            case NGHTTP2_DATA.rawValue:
                if endStream { session.delegate?.session(session, receivedEndStream: streamID) }
            case NGHTTP2_PING.rawValue:
                if frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { session.delegate?.sessionReceivedPingAck(session) }
            case NGHTTP2_SETTINGS.rawValue:
                if frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { session.delegate?.sessionReceivedSettings(session) }
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            guard let data else { return 0 }
            let session = HTTP2ServerSession.owner(userData)
            session.delegate?.session(session, receivedData: UnsafeRawBufferPointer(start: data, count: length), streamID: streamID)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            let session = HTTP2ServerSession.owner(userData)
            session.inbound[streamID] = nil
            session.outbound[streamID] = nil
            session.delegate?.session(session, closedStream: streamID, errorCode: HTTP2ErrorCode(rawValue: errorCode))
            return 0
        }
    }

    /// nghttp2 asks for up to `length` body bytes of a stream's response.
    private static let readBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
        guard let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
        let session = HTTP2ServerSession.owner(userData)
        guard var body = session.outbound[streamID] else {
            // Reset or closed under us: end quietly.
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        var written = 0
        var sentChunks = 0
        while written < length, !body.chunks.isEmpty {
            let chunk = body.chunks[0]
            let take = min(length - written, chunk.count - body.offsetInFirst)
            chunk.withUnsafeBytes { source in
                UnsafeMutableRawPointer(buffer + written).copyMemory(
                    from: source.baseAddress! + body.offsetInFirst, byteCount: take)
            }
            written += take
            body.offsetInFirst += take
            if body.offsetInFirst == chunk.count {
                body.chunks.removeFirst()
                body.offsetInFirst = 0
                sentChunks += 1
            }
        }
        var trailers: [HTTP2Header]?
        if body.chunks.isEmpty, let ending = body.ending {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            if !ending.isEmpty {
                flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
                trailers = ending
            }
            session.outbound[streamID] = nil
        } else if written == 0 {
            body.deferred = true
            session.outbound[streamID] = body
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        } else {
            session.outbound[streamID] = body
        }
        if let trailers, let nghttp = session.session {
            _ = session.withNameValues(trailers) { nghttp2_submit_trailer(nghttp, streamID, $0, $1) }
        }
        for _ in 0..<sentChunks { session.delegate?.session(session, sentChunk: streamID) }
        return written
    }
}
