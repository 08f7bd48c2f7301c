import Logging
import Synchronization
import WallTime

/// The server end of one connection: it reads frames, runs each call as a task, and writes the
/// replies. Pure protocol logic over a ``FrameChannel``, so every transport shares it.
///
/// The rules (phases, the call table, stream ids, keepalive) live in
/// ``ServerConnectionStateMachine``; this class performs what it decides.
///
/// Every call runs in its own task, started from the frame that opens it, and is tracked here so
/// that CANCEL, its deadline, or the connection closing can cancel it. (An unstructured task per
/// call rather than a child of a per-connection task group: it saves an async hop on every call,
/// and the bookkeeping here gives the same guarantee that no call outlives its connection.)
final class ServerConnection: FrameReceiver, Sendable {
    /// The state machine, and the timers it decides about, under one lock.
    private struct State {
        var machine: ServerConnectionStateMachine<ServerCall>
        /// The HELLO timer until HELLO, then the idle timer (armed until the connection closes).
        var idleTimer: (any ScheduledTimer)?
        var keepaliveTimer: (any ScheduledTimer)?
    }

    let channel: any FrameChannel
    private let router: RPCRouter
    private let interceptors: [any ServerInterceptor]
    private let configuration: ServerConfiguration
    private let logger: Logger
    private let onClose: @Sendable (ServerConnection) -> Void
    private let state: Mutex<State>
    let id: Int

    init(
        id: Int, channel: any FrameChannel, router: RPCRouter, interceptors: [any ServerInterceptor],
        configuration: ServerConfiguration, logger: Logger, onClose: @escaping @Sendable (ServerConnection) -> Void
    ) {
        self.id = id
        self.channel = channel
        self.router = router
        self.interceptors = interceptors
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "connection.peer"] = "\(channel.peerDescription)"
        self.logger = logger
        self.onClose = onClose
        self.state = Mutex(State(machine: ServerConnectionStateMachine(limits: configuration.limits)))
    }

    /// Arms the HELLO and keepalive timers. Called once, right after the connection is accepted.
    func start() {
        let helloTimer = channel.schedule(after: configuration.helloTimeout) { [weak self] in
            guard let self, self.state.withLock({ $0.machine.phase == .awaitingHello }) else { return }
            self.closeWithError(.invalidArgument, "no HELLO within \(self.configuration.helloTimeout)")
        }
        state.withLock { $0.idleTimer = helloTimer }
        scheduleKeepalive(after: configuration.keepaliveInterval)
    }

    // MARK: Frames in

    func receive(_ frame: Frame) {
        switch state.withLock({ $0.machine.frameArrived() }) {
        case .drop:
            return
        case .expectHello:
            guard frame.type == .hello else {
                closeWithError(.invalidArgument, "the first frame must be HELLO, got \(frame.type)")
                return
            }
            receiveHello(frame)
            return
        case .dispatch:
            break
        }
        switch frame.type {
        case .headers: receiveHeaders(frame)
        case .message: receiveMessage(frame)
        case .cancel: receiveCancel(frame)
        case .credit: receiveCredit(frame)
        case .ping: receivePing(frame)
        case .goAway, .hello, .trailers: break  // a client's GOAWAY needs no action; the others are not for servers
        default: break  // unknown frame types are ignored so the protocol can grow
        }
    }

    func receiveOversizedFrame(type: FrameType, streamID: UInt32, length: Int) {
        let error = RPCError(
            code: .resourceExhausted,
            message: "\(type) frame of \(length) bytes exceeds the limit of \(configuration.limits.maxFrameBytes) bytes")
        logger.info("oversized frame skipped", metadata: ["rpc.stream": "\(streamID)", "frame.bytes": "\(length)"])
        switch state.withLock({ $0.machine.oversizedFrame(type: type, streamID: streamID) }) {
        case .closeConnection: closeWithError(error.code, error.message)
        case .endCall: endCall(streamID: streamID, with: error)
        case .refuseStream: channel.write(.trailers(streamID: streamID, error: error))
        case .ignore: break
        }
    }

    func receiveUnrecoverable(_ error: RPCError) {
        closeWithError(error.code, error.message)
    }

    func connectionClosed() {
        let closed = state.withLock { state -> (calls: [ServerCall], timers: [(any ScheduledTimer)?])? in
            guard let calls = state.machine.connectionClosed() else { return nil }
            return (calls, [state.idleTimer, state.keepaliveTimer])
        }
        guard let (calls, timers) = closed else { return }
        timers.forEach { $0?.cancel() }
        let error = RPCError(code: .cancelled, message: "the connection closed")
        for call in calls { abandon(call, error) }
        if !calls.isEmpty { logger.debug("connection closed with calls in flight", metadata: ["calls": "\(calls.count)"]) }
        onClose(self)
    }

    private func receiveHello(_ frame: Frame) {
        guard let hello = try? frame.envelope(Hello.self) else {
            closeWithError(.invalidArgument, "malformed HELLO payload")
            return
        }
        if let refusal = state.withLock({ $0.machine.receiveHello(hello, at: .now) }) {
            closeWithError(refusal.code, refusal.message)
            return
        }
        let limits = configuration.limits
        channel.write(
            .control(
                .hello, streamID: 0, flags: .ack,
                Hello(
                    version: 1, maxFrameBytes: limits.maxFrameBytes, initialCredit: limits.initialCredit,
                    maxConcurrentCalls: limits.maxConcurrentCalls, agent: Hello.agentName)))
        armIdleTimer(after: configuration.idleTimeout)
    }

    private func receiveHeaders(_ frame: Frame) {
        let streamID = frame.streamID
        let limits = configuration.limits
        // Stream ids are the client's, odd and rising; anything else means the peer is broken.
        if let highest = state.withLock({ $0.machine.claimStreamID(streamID) }) {
            closeWithError(.invalidArgument, "stream id \(streamID) must be odd and above \(highest)")
            return
        }
        guard frame.payload.count <= limits.maxHeadersBytes else {
            refuse(streamID, .resourceExhausted, "HEADERS of \(frame.payload.count) bytes exceed the limit of \(limits.maxHeadersBytes)")
            return
        }
        let headers: CallHeaders
        do {
            headers = try CallHeaders(jsonBytes: frame.payload)
        } catch {
            refuse(streamID, .invalidArgument, "malformed HEADERS: \((error as? RPCError)?.message ?? "\(error)")")
            return
        }
        guard let route = router.route(for: headers.method) else {
            refuse(streamID, .unimplemented, "unknown method \(headers.method)")
            return
        }
        if let problem = headers.ruleBroken {
            refuse(streamID, .invalidArgument, problem)
            return
        }
        if let timeoutMs = headers.timeoutMs, timeoutMs == 0 {
            refuse(streamID, .deadlineExceeded, "the deadline had passed when the call arrived")
            return
        }
        let now = ContinuousClock.now
        let deadline = headers.timeoutMs.map { now + .milliseconds($0) }
        let admission = state.withLock { state in
            state.machine.admit(streamID: streamID) { peerCredit in
                ServerCall(streamID: streamID, method: route.method, connection: self, limits: limits, peerCredit: peerCredit)
            }
        }
        let call: ServerCall
        switch admission {
        case .admitted(let admitted):
            call = admitted
        case .refused(let refusal):
            channel.write(.trailers(streamID: streamID, error: refusal))
            return
        }
        if frame.flags.contains(.endStream) { call.requests.finish() }
        if let timeoutMs = headers.timeoutMs {
            let timer = channel.schedule(after: .milliseconds(timeoutMs)) { [weak self] in
                self?.endCall(
                    streamID: streamID,
                    with: RPCError(code: .deadlineExceeded, message: "the deadline of \(timeoutMs) ms passed"))
            }
            call.withState { $0.deadlineTimer = timer }
        }
        let context = ServerContext(
            method: route.method, metadata: headers.metadata ?? [:], deadline: deadline,
            peer: channel.peerDescription, logger: logger)
        // A call with one reply prefers the connection's own thread (see `FrameChannel.taskExecutor`).
        // A call that streams replies does not: encoding its messages wherever its task runs while
        // the connection's loop writes them spreads a stream over two cores (Subscribe, measured:
        // about 780k records/s that way against 480k pinned to the connection's loop).
        let executor = route.method.kind.hasSingleResponse ? channel.taskExecutor : nil
        let task = Task(executorPreference: executor) { await self.run(call, route: route, context: context) }
        call.withState { $0.task = task }
    }

    private func receiveMessage(_ frame: Frame) {
        guard let call = state.withLock({ $0.machine.call(frame.streamID) }) else { return }  // late: the call is over
        if frame.payload.isEmpty {
            guard frame.flags.contains(.endStream) else {
                endCall(streamID: frame.streamID, with: RPCError(code: .invalidArgument, message: "empty MESSAGE without END_STREAM"))
                return
            }
            call.requests.finish()
            return
        }
        guard !frame.flags.contains(.compressed) else {
            endCall(
                streamID: frame.streamID,
                with: RPCError(code: .unimplemented, message: "compressed messages are not supported in version 1"))
            return
        }
        let withinCredit = call.withState { state -> Bool in
            state.inboundCredit -= 1
            return state.inboundCredit >= 0
        }
        guard withinCredit else {
            endCall(
                streamID: frame.streamID,
                with: RPCError(code: .resourceExhausted, message: "the client sent more messages than its credit allowed"))
            return
        }
        call.requests.append(frame.payload)
        if frame.flags.contains(.endStream) { call.requests.finish() }
    }

    private func receiveCancel(_ frame: Frame) {
        let code = (try? frame.envelope(Cancel.self)).map { StatusCode(rawValue: $0.code) } ?? .cancelled
        let (removed, settle) = removeCall(frame.streamID)
        guard let call = removed else { return }
        abandon(call, RPCError(code: code, message: "the client cancelled the call"))
        settle()
    }

    /// CREDIT for a stream that is not open, or with `n` below 1 (the schema's minimum) or not
    /// JSON, is ignored: credit can only grow, and a late CREDIT races the call's end.
    private func receiveCredit(_ frame: Frame) {
        guard let credit = try? Credit(jsonBytes: frame.payload), credit.n >= 1,
            let call = state.withLock({ $0.machine.call(frame.streamID) })
        else { return }
        call.outboundCredit.add(credit.n)
    }

    static let maxPingBytes = 64

    /// PING is about the connection: on a call's stream, or over 64 bytes, it is a protocol
    /// error (GOAWAY 3), as HTTP/2 treats a PING of the wrong size or stream.
    private func receivePing(_ frame: Frame) {
        guard frame.streamID == 0, frame.payload.count <= Self.maxPingBytes else {
            closeWithError(
                .invalidArgument,
                frame.streamID != 0
                    ? "PING on stream \(frame.streamID): PING belongs to stream 0"
                    : "PING payload of \(frame.payload.count) bytes: at most \(Self.maxPingBytes)")
            return
        }
        if frame.flags.contains(.ack) {
            state.withLock { $0.machine.pingAcknowledged() }
        } else {
            channel.write(Frame(type: .ping, flags: .ack, streamID: 0, payload: frame.payload))
        }
    }

    // MARK: Calls

    private func run(_ call: ServerCall, route: RPCRouter.Route, context: ServerContext) async {
        var failure: RPCError?
        do {
            try await CallDeadline.$current.withValue(context.deadline) {
                try await intercepted(context, at: 0) { context in try await route.handler(call, context) }
            }
        } catch {
            failure = Self.status(for: error, logger: context.logger)
        }
        complete(call, failure: failure)
    }

    private func intercepted(
        _ context: ServerContext, at index: Int, _ handler: @escaping @Sendable (ServerContext) async throws -> Void
    ) async throws {
        guard index < interceptors.count else { return try await handler(context) }
        try await interceptors[index].intercept(context: context) { context in
            try await self.intercepted(context, at: index + 1, handler)
        }
    }

    /// The status a handler's error ends its call with. Errors that are not `RPCError` become
    /// `UNKNOWN` without their text, which may hold internals; the text goes to the log instead.
    static func status(for error: any Error, logger: Logger) -> RPCError {
        if let status = knownStatus(for: error) { return status }
        logger.error("handler failed with an error that is not an RPCError", metadata: ["error": "\(error)"])
        return RPCError(code: .unknown, message: "the service failed with an unexpected error")
    }

    /// The status code a handler's error ends its call with, without logging anything.
    static func statusCode(for error: any Error) -> StatusCode { knownStatus(for: error)?.code ?? .unknown }

    private static func knownStatus(for error: any Error) -> RPCError? {
        switch error {
        case let error as RPCError: return error
        case let error as any RPCErrorConvertible: return error.rpcError
        case is CancellationError: return RPCError(code: .cancelled, message: "the call was cancelled")
        default: return nil
        }
    }

    /// Sends the final status of a call whose handler returned or threw, unless the call was
    /// already ended by the connection.
    private func complete(_ call: ServerCall, failure: RPCError?) {
        let (removed, settle) = removeCall(call.streamID)
        guard removed === call else { return }
        defer { settle() }
        let (response, timer) = call.withState { ($0.singleResponse, $0.deadlineTimer) }
        timer?.cancel()
        call.requests.fail(RPCError(code: .cancelled, message: "the call is over"))
        call.outboundCredit.fail(RPCError(code: .cancelled, message: "the call is over"))
        if let failure {
            channel.write(.trailers(streamID: call.streamID, error: failure))
        } else if call.method.kind.hasSingleResponse {
            guard let response else {
                channel.write(
                    .trailers(
                        streamID: call.streamID,
                        error: RPCError(code: .internalError, message: "the handler returned no response")))
                return
            }
            if let refusal = oversizedResponse(response.count) {
                channel.write(.trailers(streamID: call.streamID, error: refusal))
                return
            }
            channel.write([
                Frame(type: .message, streamID: call.streamID, payload: response),
                .trailers(streamID: call.streamID, error: nil),
            ])
        } else {
            channel.write(.trailers(streamID: call.streamID, error: nil))
        }
    }

    /// The status for a response the client said it cannot take (its HELLO `maxFrameBytes`):
    /// the frame is not sent; the call ends with RESOURCE_EXHAUSTED, as an oversized frame does.
    func oversizedResponse(_ bytes: Int) -> RPCError? {
        let limit = state.withLock { $0.machine.peerMaxFrameBytes }
        guard bytes > limit else { return nil }
        return RPCError(
            code: .resourceExhausted,
            message: "the response of \(bytes) bytes exceeds the client's maxFrameBytes of \(limit) (its HELLO): it was not sent")
    }

    /// Ends a call from the connection's side (deadline, bad frame): the status goes out now and
    /// the handler's task is cancelled; whatever it does later is dropped.
    private func endCall(streamID: UInt32, with error: RPCError) {
        let (removed, settle) = removeCall(streamID)
        guard let call = removed else { return }
        channel.write(.trailers(streamID: streamID, error: error))
        abandon(call, error)
        settle()
    }

    /// Cancels a call already removed from the table, without sending anything.
    private func abandon(_ call: ServerCall, _ error: RPCError) {
        let (task, timer) = call.withState { ($0.task, $0.deadlineTimer) }
        timer?.cancel()
        call.requests.fail(error)
        call.outboundCredit.fail(error)
        task?.cancel()
    }

    /// Takes a call out of the table. The caller writes the call's last frames and then calls
    /// the returned `settle`, which closes a draining connection that has no call left (after the
    /// frames, so they go out before the close).
    private func removeCall(_ streamID: UInt32) -> (call: ServerCall?, settle: () -> Void) {
        let now = ContinuousClock.now
        guard let (call, then) = state.withLock({ $0.machine.removeCall(streamID, at: now) }) else { return (nil, {}) }
        return (
            call,
            {
                switch then {
                case .nothing: break
                case .close: self.channel.close()
                }
            }
        )
    }

    /// Writes frames of a call that is still open; false once it is over.
    func write(_ frames: [Frame], for call: ServerCall) -> Bool {
        // The check and the write are not atomic; a frame that slips past a concurrent end is
        // harmless, because the client ignores frames for streams it has closed.
        guard state.withLock({ $0.machine.isOpen(call, streamID: call.streamID) }) else { return false }
        channel.write(frames)
        return true
    }

    func grantCredit(_ n: Int, streamID: UInt32) {
        guard let call = state.withLock({ $0.machine.call(streamID) }) else { return }
        call.withState { $0.inboundCredit += n }
        channel.write(Frame(type: .credit, streamID: streamID, payload: Credit(n: n).jsonBytes))
    }

    // MARK: Connection lifecycle

    /// GOAWAY: refuse new calls, let the open ones finish, then close.
    func beginGracefulShutdown(reason: String = "the server is shutting down") {
        guard let (lastStreamID, closeNow) = state.withLock({ $0.machine.beginGracefulShutdown() }) else { return }
        channel.write(.control(.goAway, streamID: 0, GoAway(lastStreamId: lastStreamID, code: .ok, message: reason)))
        if closeNow { channel.close() }
    }

    /// Cancels every call and closes: the grace period is over.
    func forceClose() {
        let calls = state.withLock { $0.machine.forceClose() }
        let error = RPCError(code: .unavailable, message: "the server shut down before the call finished")
        for call in calls {
            channel.write(.trailers(streamID: call.streamID, error: error))
            abandon(call, error)
        }
        channel.close()
    }

    /// Sends GOAWAY with an error and closes: the connection cannot go on.
    func closeWithError(_ code: StatusCode, _ message: String) {
        guard let highest = state.withLock({ $0.machine.closeWithError() }) else { return }
        logger.warning("closing connection: \(message)", metadata: ["rpc.status": "\(code.name)"])
        channel.write(.control(.goAway, streamID: 0, GoAway(lastStreamId: highest, code: code, message: message)))
        channel.close()
    }

    /// Arms the idle timer (replacing the HELLO timer, or the idle timer that just fired).
    private func armIdleTimer(after delay: Duration) {
        let timer = channel.schedule(after: delay) { [weak self] in self?.idleTimerFired() }
        let previous = state.withLock { state -> (any ScheduledTimer)? in
            defer { state.idleTimer = timer }
            return state.idleTimer
        }
        previous?.cancel()
    }

    private func idleTimerFired() {
        let timeout = configuration.idleTimeout
        switch state.withLock({ $0.machine.idleTimerFired(at: .now, timeout: timeout) }) {
        case .shutDown:
            logger.debug("closing idle connection")
            beginGracefulShutdown(reason: "idle for \(timeout)")
        case .checkAgain(let rest):
            armIdleTimer(after: rest)
        case .stop:
            break
        }
    }

    private func scheduleKeepalive(after delay: Duration) {
        let timer = channel.schedule(after: delay) { [weak self] in self?.keepaliveFired() }
        state.withLock { $0.keepaliveTimer = timer }
    }

    private func keepaliveFired() {
        switch state.withLock({ $0.machine.keepaliveFired() }) {
        case .stop:
            return
        case .rearm:
            scheduleKeepalive(after: configuration.keepaliveInterval)
        case .ping:
            channel.write(Frame(type: .ping, streamID: 0, payload: Array("keepaliv".utf8)))
            scheduleKeepalive(after: configuration.keepaliveTimeout)
        case .close:
            closeWithError(.unavailable, "no answer to PING within \(configuration.keepaliveTimeout)")
        }
    }

    private func refuse(_ streamID: UInt32, _ code: StatusCode, _ message: String) {
        logger.debug("call refused", metadata: ["rpc.stream": "\(streamID)", "rpc.status": "\(code.name)", "reason": "\(message)"])
        channel.write(.trailers(streamID: streamID, error: RPCError(code: code, message: message)))
    }
}
