import Logging
import Synchronization

/// The client end of one connection: it numbers calls, sends their frames, and routes what the
/// server sends back to them, over a ``FrameChannel``. The rules live in
/// ``ClientConnectionStateMachine``; this class performs what it decides.
final class ClientConnection: FrameReceiver, Sendable {

    let channel: any FrameChannel
    private let limits: ConnectionLimits
    private let logger: Logger
    private let state = Mutex(ClientConnectionStateMachine<ClientCall>())
    /// The next stream id. Held while a call's HEADERS are written, so ids reach the wire in
    /// rising order as the protocol requires, however many tasks open calls at once. Frames
    /// arriving never take this lock, so an in-memory transport that delivers synchronously
    /// cannot deadlock on it.
    private let nextStreamID = Mutex<UInt32>(1)

    init(channel: any FrameChannel, limits: ConnectionLimits, logger: Logger) {
        self.channel = channel
        self.limits = limits
        self.logger = logger
        channel.write(
            .control(
                .hello, streamID: 0,
                Hello(
                    versions: Hello.supportedVersions, maxFrameBytes: limits.maxFrameBytes,
                    initialCredit: limits.initialCredit, agent: Hello.agentName)))
    }

    /// True while new calls may start here.
    var isUsable: Bool { state.withLock { $0.isUsable } }

    /// Opens a call: HEADERS, plus the one request and END_STREAM when `request` is given, in one flush.
    func open(_ method: MethodDescriptor, options: CallOptions, timeoutMs: Int64?, request: [UInt8]?) throws -> ClientCall {
        let headers = CallHeaders(
            method: method.fullName, timeoutMs: timeoutMs,
            metadata: options.metadata.isEmpty ? nil : options.metadata)
        let headersPayload = headers.jsonBytes
        return try nextStreamID.withLock { nextStreamID -> ClientCall in
            let streamID = nextStreamID
            let call = try state.withLock { (state) throws(RPCError) -> ClientCall in
                try state.open(streamID: streamID, requestBytes: request?.count) { serverCredit in
                    ClientCall(streamID: streamID, method: method, connection: self, limits: limits, peerCredit: serverCredit)
                }
            }
            nextStreamID += 2
            var frames = [Frame(type: .headers, streamID: streamID, payload: headersPayload)]
            if let request {
                frames.append(Frame(type: .message, flags: .endStream, streamID: streamID, payload: request))
            }
            channel.write(frames)
            if let timeoutMs {
                let timer = channel.schedule(after: .milliseconds(timeoutMs)) { [weak self, weak call] in
                    guard let self, let call else { return }
                    self.cancel(call, RPCError(code: .deadlineExceeded, message: "the deadline of \(timeoutMs) ms passed"))
                }
                call.deadlineTimer.withLock { $0 = timer }
            }
            return call
        }
    }

    func write(_ frames: [Frame], for call: ClientCall) -> Bool {
        guard state.withLock({ $0.isOpen(call, streamID: call.streamID) }) else { return false }
        channel.write(frames)
        return true
    }

    func cancel(_ call: ClientCall, _ error: RPCError) {
        guard remove(call.streamID) === call else { return }
        channel.write(.control(.cancel, streamID: call.streamID, Cancel(code: error.code)))
        end(call, error)
    }

    func grantCredit(_ n: Int, streamID: UInt32) {
        guard state.withLock({ $0.call(streamID) != nil }) else { return }
        channel.write(Frame(type: .credit, streamID: streamID, payload: Credit(n: n).jsonBytes))
    }

    /// Closes the connection; its calls end with `UNAVAILABLE`.
    func close() {
        channel.close()
    }

    // MARK: Frames in

    func receive(_ frame: Frame) {
        switch frame.type {
        case .message:
            guard let call = state.withLock({ $0.call(frame.streamID) }) else { return }
            if !frame.payload.isEmpty { call.responses.append(frame.payload) }
        case .trailers:
            guard let call = remove(frame.streamID) else { return }
            let status: RPCError?
            if frame.payload == Trailers.okBytes {
                status = nil
            } else if let trailers = try? frame.envelope(Trailers.self) {
                status = trailers.error
            } else {
                status = RPCError(code: .internalError, message: "the server sent malformed TRAILERS")
            }
            end(call, status, keepBuffered: true)
        case .credit:
            guard let credit = try? Credit(jsonBytes: frame.payload),
                let call = state.withLock({ $0.call(frame.streamID) })
            else { return }
            call.outboundCredit.add(credit.n)
        case .hello:
            guard let hello = try? frame.envelope(Hello.self) else { return }
            state.withLock { $0.receiveHello(initialCredit: hello.initialCredit, maxFrameBytes: hello.maxFrameBytes) }
        case .ping:
            if !frame.flags.contains(.ack) {
                channel.write(Frame(type: .ping, flags: .ack, streamID: 0, payload: frame.payload))
            }
        case .goAway:
            receiveGoAway(frame)
        default:
            break
        }
    }

    func receiveOversizedFrame(type: FrameType, streamID: UInt32, length: Int) {
        guard let call = state.withLock({ $0.call(streamID) }) else { return }
        cancel(
            call,
            RPCError(
                code: .resourceExhausted,
                message: "the server sent a frame of \(length) bytes, over the limit of \(limits.maxFrameBytes) bytes"))
    }

    func receiveUnrecoverable(_ error: RPCError) {
        logger.warning("closing connection: \(error.message)")
        channel.close()
    }

    func connectionClosed() {
        let calls = state.withLock { $0.connectionClosed() }
        let error = RPCError(code: .unavailable, message: "the connection to the server closed")
        for call in calls { end(call, error) }
    }

    private func receiveGoAway(_ frame: Frame) {
        let goAway = try? frame.envelope(GoAway.self)
        let lastStreamID = goAway?.lastStreamId ?? 0
        let reason = goAway?.message ?? "the server is going away"
        let code = goAway.map { StatusCode(rawValue: $0.code) } ?? .unavailable
        // An error GOAWAY (a limit, a protocol error) keeps its code; a plain one is UNAVAILABLE.
        let error = RPCError(code: code == .ok ? .unavailable : code, message: reason)
        let (refused, closeNow) = state.withLock { $0.receiveGoAway(lastStreamID: lastStreamID, error: error) }
        logger.debug("server sent GOAWAY", metadata: ["last_stream": "\(lastStreamID)", "reason": "\(reason)"])
        for call in refused { end(call, error) }
        if closeNow { channel.close() }
    }

    private func remove(_ streamID: UInt32) -> ClientCall? {
        let (call, closeNow) = state.withLock { $0.remove(streamID) }
        if closeNow { channel.close() }
        return call
    }

    /// Ends a call removed from the table. With `keepBuffered` (a status from the server), the
    /// messages already received are still read before the status; otherwise they are dropped.
    private func end(_ call: ClientCall, _ error: RPCError?, keepBuffered: Bool = false) {
        call.deadlineTimer.withLock { $0?.cancel() }
        if let error {
            if keepBuffered { call.responses.finish(throwing: error) } else { call.responses.fail(error) }
            call.outboundCredit.fail(error)
        } else {
            call.responses.finish()
            call.outboundCredit.fail(RPCError(code: .cancelled, message: "the server ended the call"))
        }
    }
}
