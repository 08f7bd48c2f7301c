import Logging
import NGHTTP2
import NIOCore
import RPCCore
import RPCTransportNIO
import Synchronization
import WallTime

/// One HTTP/2 connection of the edge, seen by the RPC core as a jframe connection.
///
/// The core's ``ServerConnection`` runs unchanged on top: routing, interceptors, deadlines,
/// limits, cancellation and graceful shutdown are the same code as on the TCP port. This type
/// translates both ways:
/// - an HTTP/2 request becomes HEADERS (method from `:path`, deadline from `grpc-timeout` or
///   `connect-timeout-ms`, the other headers as metadata), one MESSAGE per request message, an
///   empty MESSAGE with END_STREAM at the end, and CANCEL when the client resets the stream;
/// - MESSAGE and TRAILERS from the core become the response in the request's protocol (gRPC,
///   Connect unary or Connect streaming); PING and GOAWAY become their HTTP/2 frames.
///
/// Flow control is carried through rather than buffered: a request message is handed to the core
/// only within the call's message credit, and its bytes are consumed from the HTTP/2 window only
/// then; a response message gives the core its credit back only when nghttp2 has taken it into
/// a DATA frame, i.e. when the client's window let it go. Each request's flow rules live in
/// ``EdgeCallState``; this class feeds it nghttp2's events and performs what it returns.
///
/// Everything but `write`, `close` and `schedule` runs on the channel's event loop, and the state
/// it keeps lives in a `NIOLoopBoundBox`, which checks that it is.
final class HTTP2EdgeConnection: FrameChannel, HTTP2ServerSessionDelegate, Sendable {
    /// Frames from the core, queued from any thread and applied on the event loop.
    private struct Pending {
        var frames: [Frame] = []
        var scheduled = false
        var closeRequested = false
        var closed = false
    }

    let channel: any Channel
    let peerDescription: String
    let taskExecutor: (any TaskExecutor)?
    private let limits: ConnectionLimits
    private let logger: Logger
    private let pending = Mutex(Pending())

    /// What only the event loop touches.
    private struct LoopState {
        var session: HTTP2ServerSession?
        var receiver: (any FrameReceiver)?
        var calls: [Int32: EdgeCallState] = [:]
        var prefaceTimer: Scheduled<Void>?
        var closing = false
        var output: [UInt8] = []
    }

    private let loopState: NIOLoopBoundBox<LoopState>

    private var session: HTTP2ServerSession? {
        get { loopState.value.session }
        _modify { yield &loopState.value.session }
    }
    private var receiver: (any FrameReceiver)? {
        get { loopState.value.receiver }
        _modify { yield &loopState.value.receiver }
    }
    private var calls: [Int32: EdgeCallState] {
        get { loopState.value.calls }
        _modify { yield &loopState.value.calls }
    }
    private var prefaceTimer: Scheduled<Void>? {
        get { loopState.value.prefaceTimer }
        _modify { yield &loopState.value.prefaceTimer }
    }
    private var closing: Bool {
        get { loopState.value.closing }
        _modify { yield &loopState.value.closing }
    }
    private var output: [UInt8] {
        get { loopState.value.output }
        _modify { yield &loopState.value.output }
    }

    /// Made on the channel's event loop (the listener's child-channel initializer).
    init(channel: any Channel, limits: ConnectionLimits, logger: Logger) {
        self.loopState = NIOLoopBoundBox(LoopState(), eventLoop: channel.eventLoop)
        self.channel = channel
        self.peerDescription = channel.remoteAddress.map { "\($0)" } ?? "unknown"
        self.taskExecutor = EventLoopTasks.executor(for: channel.eventLoop)
        self.limits = limits
        self.logger = logger
    }

    // MARK: Lifecycle (event loop)

    /// The TCP connection is up: start the HTTP/2 session and open the core's connection with a HELLO.
    func start(receiver: any FrameReceiver) throws {
        channel.eventLoop.assertInEventLoop()
        var sessionLimits = HTTP2SessionLimits.defaults
        sessionLimits.maxConcurrentStreams = limits.maxConcurrentCalls
        sessionLimits.maxHeaderListBytes = limits.maxHeadersBytes
        let session = try HTTP2ServerSession(limits: sessionLimits)
        session.delegate = self
        self.session = session
        self.receiver = receiver
        receiver.receive(
            .control(
                .hello, streamID: 0,
                Hello(versions: Hello.supportedVersions, maxFrameBytes: limits.maxFrameBytes, initialCredit: Self.responseCredit)))
        let timeout = limits.frameReadTimeout
        prefaceTimer = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.wholeNanoseconds)) { [weak self] in
            guard let self else { return }
            self.logger.info("closing HTTP/2 connection: no connection preface within \(timeout)")
            self.channel.close(promise: nil)
        }
        flushOutput()
    }

    /// Response messages the core may send on a stream before the edge has passed earlier ones to
    /// nghttp2: enough to keep a stream busy, few enough to bound the memory a slow reader costs.
    static let responseCredit = 16

    func read(_ buffer: ByteBuffer) {
        channel.eventLoop.assertInEventLoop()
        guard let session else { return }
        do {
            try buffer.withUnsafeReadableBytes { try session.receive($0) }
        } catch {
            logger.info("closing HTTP/2 connection: \(error)")
            flushOutput()
            channel.close(promise: nil)
            return
        }
        flushOutput()
    }

    func inactive() {
        channel.eventLoop.assertInEventLoop()
        prefaceTimer?.cancel()
        pending.withLock { pending in
            pending.closed = true
            pending.frames.removeAll()
        }
        calls.removeAll()
        receiver?.connectionClosed()
        receiver = nil
        session = nil
    }

    func writabilityChanged() {
        channel.eventLoop.assertInEventLoop()
        channel.setOption(ChannelOptions.autoRead, value: channel.isWritable).whenComplete { _ in }
        if channel.isWritable { flushOutput() }
    }

    /// Sends what nghttp2 has for us while the socket takes it; closes when the session is over.
    private func flushOutput() {
        guard let session else { return }
        var healthy = true
        // The buffer is taken out of the loop state while nghttp2 fills it: its callbacks reach
        // back into the state (the calls), which must not be in the middle of an access then.
        var output: [UInt8] = []
        swap(&output, &self.output)
        defer { self.output = output }
        while channel.isWritable {
            output.removeAll(keepingCapacity: true)
            healthy = session.takeOutput(into: &output, limit: 256 * 1024)
            guard !output.isEmpty else { break }
            var buffer = channel.allocator.buffer(capacity: output.count)
            buffer.writeBytes(output)
            channel.write(buffer, promise: nil)
            if !healthy { break }
        }
        channel.flush()
        // Whether queued bodies are drained is asked only once the core wants the connection
        // closed: it walks every stream, which has no place on each read and write.
        let drained = { !session.wantsWrite && session.streamsWithQueuedData == 0 }
        if !healthy || (!session.wantsRead && !session.wantsWrite) || (closing && drained()) {
            channel.close(promise: nil)
        }
    }

    // MARK: FrameChannel (any thread)

    func write(_ frames: [Frame]) {
        let schedule = pending.withLock { pending -> Bool in
            guard !pending.closed else { return false }
            pending.frames += frames
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        if schedule { channel.eventLoop.execute { self.applyPending() } }
    }

    func close() {
        let schedule = pending.withLock { pending -> Bool in
            guard !pending.closed, !pending.closeRequested else { return false }
            pending.closeRequested = true
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        if schedule { channel.eventLoop.execute { self.applyPending() } }
    }

    func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> any ScheduledTimer {
        EventLoopTimer(scheduled: channel.eventLoop.scheduleTask(in: .nanoseconds(delay.wholeNanoseconds), body))
    }

    // MARK: From the core (event loop)

    private func applyPending() {
        channel.eventLoop.assertInEventLoop()
        let (frames, closeRequested) = pending.withLock { pending -> ([Frame], Bool) in
            pending.scheduled = false
            defer { pending.frames.removeAll() }
            return (pending.frames, pending.closeRequested)
        }
        guard session != nil else { return }
        for frame in frames { apply(frame) }
        if closeRequested, !closing {
            closing = true
            // Bodies still waiting for the client's window get a while to drain, not forever.
            let grace = limits.frameReadTimeout
            channel.eventLoop.scheduleTask(in: .nanoseconds(grace.wholeNanoseconds)) { [channel] in channel.close(promise: nil) }
        }
        flushOutput()
    }

    private func apply(_ frame: Frame) {
        let streamID = Int32(truncatingIfNeeded: frame.streamID)
        switch frame.type {
        case .message: responseMessage(frame.payload, streamID: streamID)
        case .trailers:
            guard let trailers = try? frame.envelope(Trailers.self) else { return }
            finish(streamID, trailers)
        case .credit:
            guard let credit = try? frame.envelope(Credit.self), calls[streamID] != nil else { return }
            calls[streamID]!.grantCredit(credit.n)
            forwardRequests(streamID)
        case .ping:
            if !frame.flags.contains(.ack) { session?.ping() }
        case .goAway:
            guard let goAway = try? frame.envelope(GoAway.self) else { return }
            let code: HTTP2ErrorCode =
                switch StatusCode(rawValue: goAway.code) {
                case .ok: .noError
                case .resourceExhausted: .enhanceYourCalm
                default: .protocolError
                }
            session?.goAway(lastStreamID: Int32(truncatingIfNeeded: goAway.lastStreamId), code: code, debug: goAway.message ?? "")
        default:
            break  // HELLO's answer: the edge set the limits itself
        }
    }

    private func responseMessage(_ payload: [UInt8], streamID: Int32) {
        guard let call = calls[streamID], !call.done, let session else { return }
        switch call.wire {
        case .connectUnary:
            guard call.unaryReply == nil else {
                fail(
                    streamID,
                    RPCError(code: .unimplemented, message: "this method streams its replies: call it with application/connect+json"))
                return
            }
            calls[streamID]!.unaryReply = payload
        case .grpc, .connectStreaming:
            startResponse(streamID, call)
            session.sendData(streamID: streamID, EnvelopeReader.frame(payload))
        }
    }

    private func startResponse(_ streamID: Int32, _ call: EdgeCallState) {
        guard !call.responseStarted else { return }
        calls[streamID]!.responseStarted = true
        session?.respond(streamID: streamID, headers: EdgeReplies.responseHeaders(contentType: call.wire.responseContentType), endStream: false)
    }

    /// Writes the final status in the call's protocol.
    private func finish(_ streamID: Int32, _ trailers: Trailers) {
        guard let call = calls[streamID], !call.done, let session else { return }
        calls[streamID]!.done = true
        switch call.wire {
        case .grpc(let contentType):
            if call.responseStarted {
                session.finish(streamID: streamID, trailers: EdgeReplies.grpcStatus(trailers))
            } else {
                // Trailers-only: the status in the one header block.
                session.respond(
                    streamID: streamID, headers: EdgeReplies.responseHeaders(contentType: contentType) + EdgeReplies.grpcStatus(trailers),
                    endStream: true)
            }
        case .connectUnary:
            let metadata = EdgeReplies.metadataFields(trailers.metadata, prefix: "trailer-")
            let (status, body): (Int, [UInt8])
            if trailers.code == StatusCode.ok.rawValue, let reply = call.unaryReply {
                (status, body) = (200, reply)
            } else {
                var failure = trailers
                if failure.code == StatusCode.ok.rawValue {
                    failure = Trailers(RPCError(code: .internalError, message: "the handler returned no response"))
                }
                (status, body) = (
                    ConnectCode.httpStatus(StatusCode(rawValue: failure.code)),
                    (try? MessageCoding.encode(EdgeReplies.connectError(failure))) ?? []
                )
            }
            session.respond(
                streamID: streamID,
                headers: EdgeReplies.responseHeaders(status: status, contentType: "application/json", extra: metadata),
                endStream: false)
            session.sendData(streamID: streamID, body)
            session.finish(streamID: streamID, trailers: [])
        case .connectStreaming:
            startResponse(streamID, call)
            session.sendData(
                streamID: streamID, EnvelopeReader.frame(EdgeReplies.connectEndOfStream(trailers), flags: EnvelopeReader.endStreamFlag))
            session.finish(streamID: streamID, trailers: [])
        }
    }

    /// Ends a call from the edge (bad message, limit): the core's call is cancelled and the client gets `error`.
    private func fail(_ streamID: Int32, _ error: RPCError) {
        guard let call = calls[streamID], !call.done else { return }
        if call.forwarded {
            receiver?.receive(.control(.cancel, streamID: UInt32(streamID), Cancel(code: error.code)))
        }
        logger.debug(
            "HTTP/2 call ended by the edge",
            metadata: ["rpc.stream": "\(streamID)", "rpc.status": "\(error.code.name)", "reason": "\(error.message)"])
        finish(streamID, Trailers(error))
    }

    // MARK: From the client (event loop, inside `read`)

    func session(
        _ session: HTTP2ServerSession, receivedRequest streamID: Int32, headers: [HTTP2Header], headersTooLarge: Bool,
        endStream: Bool
    ) {
        var fields: [String: String] = [:]
        var metadata = Metadata()
        for header in headers {
            fields[header.name] = header.value
            if !header.name.hasPrefix(":"), !EdgeReplies.reservedRequestHeaders.contains(header.name) {
                metadata[header.name] = header.value
            }
        }
        guard fields[":method"] == "POST" else {
            // Connect's GET form is for methods marked free of side effects, which our contracts do not mark.
            plainReply(streamID, status: 405, "only POST is served\n")
            return
        }
        guard let wire = EdgeProtocol(contentType: fields["content-type"]) else {
            plainReply(
                streamID, status: 415,
                "unsupported content-type '\(fields["content-type"] ?? "")': this edge serves \(EdgeProtocol.supportedContentTypes)\n")
            return
        }
        calls[streamID] = EdgeCallState(
            wire: wire, maxMessageBytes: limits.maxFrameBytes, credit: limits.initialCredit, requestEnded: endStream)
        if headersTooLarge {
            fail(streamID, RPCError(code: .resourceExhausted, message: "request headers exceed the limit of \(limits.maxHeadersBytes) bytes"))
            return
        }
        let encodingHeader: String =
            switch wire {
            case .grpc: "grpc-encoding"
            case .connectUnary: "content-encoding"
            case .connectStreaming: "connect-content-encoding"
            }
        if let encoding = fields[encodingHeader], encoding != "identity" {
            // gRPC says a server refuses an encoding it does not support, whatever the messages' flags.
            fail(streamID, RPCError(code: .unimplemented, message: "\(encodingHeader) \(encoding) is not supported: send uncompressed messages"))
            return
        }
        var timeoutMs: Int64?
        switch wire {
        case .grpc:
            if let text = fields["grpc-timeout"] {
                guard let value = GRPCTimeout.milliseconds(text) else {
                    fail(streamID, RPCError(code: .invalidArgument, message: "malformed grpc-timeout '\(text)'"))
                    return
                }
                timeoutMs = value
            }
        case .connectUnary, .connectStreaming:
            if let text = fields["connect-timeout-ms"] {
                guard text.count <= 10, text.allSatisfy(\.isASCIIDigit), let value = Int64(text) else {
                    fail(streamID, RPCError(code: .invalidArgument, message: "malformed connect-timeout-ms '\(text)'"))
                    return
                }
                timeoutMs = value
            }
        }
        let path = fields[":path"] ?? ""
        let method = path.hasPrefix("/") ? String(path.dropFirst()) : path
        guard let payload = try? MessageCoding.encode(CallHeaders(method: method, timeoutMs: timeoutMs, metadata: metadata.isEmpty ? nil : metadata))
        else { return }
        calls[streamID]!.forwarded = true
        // Connect unary sends its message at END_STREAM (the whole body), so the end is never forwarded here.
        let ends = endStream && wire.isEnveloped
        if ends { calls[streamID]!.endForwarded = true }
        receiver?.receive(Frame(type: .headers, flags: ends ? .endStream : [], streamID: UInt32(streamID), payload: payload))
        if endStream, !wire.isEnveloped { requestEnded(streamID) }
    }

    func session(_ session: HTTP2ServerSession, receivedData bytes: UnsafeRawBufferPointer, streamID: Int32) {
        guard calls[streamID].map({ !$0.done }) == true else {
            session.consume(streamID: streamID, bytes: bytes.count)  // nobody wants them, but the window must reopen
            return
        }
        if let error = calls[streamID]!.receiveData(bytes) {
            fail(streamID, error)
            return
        }
        forwardRequests(streamID)
    }

    func session(_ session: HTTP2ServerSession, receivedEndStream streamID: Int32) {
        requestEnded(streamID)
    }

    func session(_ session: HTTP2ServerSession, closedStream streamID: Int32, errorCode: HTTP2ErrorCode) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        if call.forwarded, !call.done {
            // The client reset the stream (or the session dropped it): the call is cancelled.
            receiver?.receive(.control(.cancel, streamID: UInt32(streamID), Cancel(code: .cancelled)))
        }
    }

    func session(_ session: HTTP2ServerSession, sentChunk streamID: Int32) {
        guard let call = calls[streamID], !call.done else { return }
        receiver?.receive(.control(.credit, streamID: UInt32(streamID), Credit(n: 1)))
    }

    func sessionReceivedPingAck(_ session: HTTP2ServerSession) {
        receiver?.receive(Frame(type: .ping, flags: .ack, streamID: 0, payload: Array("keepaliv".utf8)))
    }

    func sessionReceivedSettings(_ session: HTTP2ServerSession) {
        prefaceTimer?.cancel()
        prefaceTimer = nil
    }

    private func requestEnded(_ streamID: Int32) {
        guard calls[streamID] != nil else { return }
        switch calls[streamID]!.endRequest() {
        case .nothing:
            break
        case .failed(let error):
            fail(streamID, error)
        case .forwardWaiting:
            forwardRequests(streamID)
        case .unaryMessage(let body, let releaseBytes):
            session?.consume(streamID: streamID, bytes: releaseBytes)
            receiver?.receive(Frame(type: .message, flags: .endStream, streamID: UInt32(streamID), payload: body))
        }
    }

    /// Hands the core the request messages its credit allows; the window reopens once none wait.
    private func forwardRequests(_ streamID: Int32) {
        guard let forwarding = calls[streamID]?.takeForwardable() else { return }
        for message in forwarding.messages {
            receiver?.receive(Frame(type: .message, streamID: UInt32(streamID), payload: message))
        }
        if forwarding.endStream { receiver?.receive(Frame(type: .message, flags: .endStream, streamID: UInt32(streamID))) }
        if forwarding.releaseBytes > 0 { session?.consume(streamID: streamID, bytes: forwarding.releaseBytes) }
    }

    /// A response the edge writes alone, before the call reaches the core (415, 405).
    private func plainReply(_ streamID: Int32, status: Int, _ text: String) {
        logger.debug("HTTP/2 request refused", metadata: ["rpc.stream": "\(streamID)", "http.status": "\(status)"])
        session?.respond(
            streamID: streamID,
            headers: EdgeReplies.responseHeaders(
                status: status, contentType: "text/plain; charset=utf-8",
                extra: status == 405 ? [HTTP2Header("allow", "POST")] : [HTTP2Header("accept-post", EdgeProtocol.supportedContentTypes)]),
            endStream: false)
        session?.sendData(streamID: streamID, Array(text.utf8))
        session?.finish(streamID: streamID, trailers: [])
    }
}

private struct EventLoopTimer: ScheduledTimer {
    let scheduled: Scheduled<Void>
    func cancel() { scheduled.cancel() }
}
