/// The state of one server connection and every transition it can make, free of I/O.
///
/// ``ServerConnection`` holds one of these under its lock, asks it what a frame, a timer or a
/// shutdown means, and performs the answer (writes a frame, cancels a task, closes). Keeping the
/// rules here, in a value with no channel, no tasks and no timers, is what lets a test walk every
/// phase and race (a CANCEL after the handler returned, a GOAWAY with calls in flight, a PING
/// left unanswered) without a socket: the shape of grpc-swift 2's connection state machines.
///
/// Generic over the call so tests can use any class; the connection uses ``ServerCall``.
struct ServerConnectionStateMachine<Call: AnyObject> {
    enum Phase: Equatable {
        case awaitingHello
        case open
        /// GOAWAY sent: calls up to its last stream id finish, new ones are refused.
        case draining
        case closed
    }

    private(set) var phase = Phase.awaitingHello
    /// The highest stream id the client used, refused calls included: GOAWAY names it.
    private(set) var highestStreamID: UInt32 = 0
    private(set) var calls: [UInt32: Call] = [:]
    /// The credit the client gives each new stream for our messages (from its HELLO).
    private(set) var peerInitialCredit = ConnectionLimits.defaults.initialCredit
    /// The client's HELLO `maxFrameBytes`: no frame to it may carry a larger payload.
    private(set) var peerMaxFrameBytes = Int.max
    private var receivedSinceKeepalive = false
    private var pingOutstanding = false
    /// Since when no call has been open: set when HELLO opens the connection and whenever its last
    /// call ends, `nil` while a call is open. What the idle timer measures from.
    private var idleSince: ContinuousClock.Instant?

    let limits: ConnectionLimits

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    // MARK: Frames in

    enum FrameDisposition: Equatable {
        /// The connection is closed: the frame is dropped.
        case drop
        /// Only HELLO may come now.
        case expectHello
        /// Dispatch by frame type.
        case dispatch
    }

    /// Any frame counts as a sign of life for keepalive.
    mutating func frameArrived() -> FrameDisposition {
        receivedSinceKeepalive = true
        switch phase {
        case .closed: return .drop
        case .awaitingHello: return .expectHello
        case .open, .draining: return .dispatch
        }
    }

    /// Checks a client's HELLO and, when it is acceptable, opens the connection (idle from `now`).
    /// On `nil` the connection replies with its own HELLO; otherwise it closes with the error.
    mutating func receiveHello(_ hello: Hello, at now: ContinuousClock.Instant) -> RPCError? {
        let offered = hello.versions ?? []
        guard offered.contains(where: Hello.supportedVersions.contains) else {
            return RPCError(
                code: .unimplemented,
                message: "no common protocol version: the server speaks \(Hello.supportedVersions), the client offered \(offered)")
        }
        guard hello.initialCredit >= 1 else {
            return RPCError(code: .invalidArgument, message: "HELLO initialCredit must be at least 1, got \(hello.initialCredit)")
        }
        // The Hello schema's minimum: below it not even a status would fit.
        guard hello.maxFrameBytes >= Hello.minimumMaxFrameBytes else {
            return RPCError(
                code: .invalidArgument,
                message: "HELLO maxFrameBytes must be at least \(Hello.minimumMaxFrameBytes), got \(hello.maxFrameBytes)")
        }
        phase = .open
        idleSince = now
        peerInitialCredit = hello.initialCredit
        peerMaxFrameBytes = hello.maxFrameBytes
        return nil
    }

    /// Claims a stream id for a new HEADERS. Stream ids are the client's, odd and rising; on a
    /// violation the answer is the highest id so far, and the connection closes.
    mutating func claimStreamID(_ streamID: UInt32) -> UInt32? {
        guard streamID % 2 == 1, streamID > highestStreamID else { return highestStreamID }
        highestStreamID = streamID
        return nil
    }

    enum Admission {
        /// The call is in the table (and the connection no longer idle).
        case admitted(Call)
        case refused(RPCError)
    }

    /// Admits a call whose HEADERS passed every check, unless the connection is draining or at
    /// its concurrency limit. `makeCall` gets the credit the client allows per stream.
    mutating func admit(streamID: UInt32, makeCall: (_ peerCredit: Int) -> Call) -> Admission {
        if phase == .draining {
            return .refused(RPCError(code: .unavailable, message: "the server is shutting down"))
        }
        guard calls.count < limits.maxConcurrentCalls else {
            return .refused(
                RPCError(
                    code: .resourceExhausted,
                    message: "too many concurrent calls on this connection: the limit is \(limits.maxConcurrentCalls)"))
        }
        let call = makeCall(peerInitialCredit)
        calls[streamID] = call
        idleSince = nil
        return .admitted(call)
    }

    func call(_ streamID: UInt32) -> Call? { calls[streamID] }

    /// Whether `call` is still the open call on its stream (not ended, not replaced).
    func isOpen(_ call: Call, streamID: UInt32) -> Bool { calls[streamID] === call }

    enum AfterRemoval: Equatable {
        case nothing
        /// The last call of a draining connection ended: close once its frames are out.
        case close
    }

    /// Takes a call out of the table at `now`; `nil` when it was already ended. What follows is
    /// done after the call's last frames are written, so they go out before a close.
    mutating func removeCall(_ streamID: UInt32, at now: ContinuousClock.Instant) -> (call: Call, then: AfterRemoval)? {
        guard let call = calls.removeValue(forKey: streamID) else { return nil }
        guard calls.isEmpty else { return (call, .nothing) }
        idleSince = now
        return (call, phase == .draining ? .close : .nothing)
    }

    enum OversizedFrameAction: Equatable {
        /// On stream 0: the connection cannot go on.
        case closeConnection
        /// On an open call: the call ends with RESOURCE_EXHAUSTED.
        case endCall
        /// HEADERS of a new call: refuse it (its stream id is used up all the same).
        case refuseStream
        /// Anything else: a late frame for a finished call.
        case ignore
    }

    mutating func oversizedFrame(type: FrameType, streamID: UInt32) -> OversizedFrameAction {
        guard streamID != 0 else { return .closeConnection }
        if calls[streamID] != nil { return .endCall }
        guard type == .headers else { return .ignore }
        if streamID > highestStreamID { highestStreamID = streamID }
        return .refuseStream
    }

    // MARK: Keepalive and idleness

    /// A PING with ACK: the peer is alive.
    mutating func pingAcknowledged() { pingOutstanding = false }

    enum KeepaliveAction: Equatable {
        /// Frames arrived since the last tick: check again after the interval.
        case rearm
        /// Quiet: send a PING and wait for its answer.
        case ping
        /// The last PING went unanswered.
        case close
        /// The connection is closed.
        case stop
    }

    mutating func keepaliveFired() -> KeepaliveAction {
        guard phase != .closed else { return .stop }
        if pingOutstanding { return .close }
        if receivedSinceKeepalive {
            receivedSinceKeepalive = false
            return .rearm
        }
        pingOutstanding = true
        return .ping
    }

    enum IdleTimerAction: Equatable {
        /// No call for the whole timeout: shut down gracefully.
        case shutDown
        /// Fire again after this long: idle for less than the timeout, or a call is open.
        case checkAgain(after: Duration)
        /// Draining or closed: the timer has nothing left to watch.
        case stop
    }

    /// The idle timer fired at `now`. One timer stays armed from HELLO to the close and is moved
    /// only when it fires (the way Netty's `IdleStateHandler` works), instead of being cancelled
    /// when a call starts and armed again when it ends: that pair cost about 5,000 instructions,
    /// 7% of a unary call on the server.
    func idleTimerFired(at now: ContinuousClock.Instant, timeout: Duration) -> IdleTimerAction {
        guard phase == .open else { return .stop }
        guard let idleSince else { return .checkAgain(after: timeout) }
        let idle = idleSince.duration(to: now)
        return idle >= timeout ? .shutDown : .checkAgain(after: timeout - idle)
    }

    // MARK: Shutdown

    /// Stops admitting calls (GOAWAY with the highest stream id). `closeNow` when none are open.
    /// `nil` when already draining or closed.
    mutating func beginGracefulShutdown() -> (lastStreamID: UInt32, closeNow: Bool)? {
        guard phase == .open || phase == .awaitingHello else { return nil }
        phase = .draining
        return (highestStreamID, calls.isEmpty)
    }

    /// The connection cannot go on: the GOAWAY names the highest stream id. `nil` once closed.
    mutating func closeWithError() -> UInt32? {
        guard phase != .closed else { return nil }
        phase = .draining
        return highestStreamID
    }

    /// The grace period is over: every open call is handed back to be cancelled.
    mutating func forceClose() -> [Call] {
        defer { calls.removeAll() }
        return Array(calls.values)
    }

    /// The transport closed: the calls still open are handed back to be cancelled. `nil` when
    /// this was already seen.
    mutating func connectionClosed() -> [Call]? {
        guard phase != .closed else { return nil }
        phase = .closed
        defer { calls.removeAll() }
        return Array(calls.values)
    }
}
