import Testing

@testable import RPCCore

/// The server connection's rules, walked without a channel, a task or a timer.
@Suite("Server connection state machine")
struct ServerConnectionStateMachineTests {
    typealias Call = StateMachineCall
    typealias Machine = ServerConnectionStateMachine<Call>

    static func limits(maxConcurrentCalls: Int = 4) -> ConnectionLimits {
        var limits = ConnectionLimits.defaults
        limits.maxConcurrentCalls = maxConcurrentCalls
        return limits
    }

    static func hello(versions: [Int]? = [1], maxFrameBytes: Int = 65_536, initialCredit: Int = 8) -> Hello {
        Hello(versions: versions, maxFrameBytes: maxFrameBytes, initialCredit: initialCredit)
    }

    /// A fixed instant to measure idleness from.
    static let t0 = ContinuousClock.now

    static func open(maxConcurrentCalls: Int = 4, at now: ContinuousClock.Instant = t0) -> Machine {
        var machine = Machine(limits: limits(maxConcurrentCalls: maxConcurrentCalls))
        #expect(machine.receiveHello(hello(), at: now) == nil)
        return machine
    }

    @discardableResult
    static func admit(_ machine: inout Machine, _ streamID: UInt32) -> Call? {
        guard machine.claimStreamID(streamID) == nil else { return nil }
        guard case .admitted(let call) = machine.admit(streamID: streamID, makeCall: Call.init(credit:)) else { return nil }
        return call
    }

    @Test("only HELLO opens the connection, and a bad HELLO says what is wrong")
    func hello() {
        var machine = Machine(limits: Self.limits())
        #expect(machine.frameArrived() == .expectHello)
        #expect(machine.receiveHello(Self.hello(versions: [2]), at: Self.t0)?.code == .unimplemented)
        #expect(machine.receiveHello(Self.hello(versions: nil), at: Self.t0)?.code == .unimplemented)
        #expect(machine.receiveHello(Self.hello(initialCredit: 0), at: Self.t0)?.message.contains("initialCredit") == true)
        #expect(machine.receiveHello(Self.hello(maxFrameBytes: 1023), at: Self.t0)?.message.contains("maxFrameBytes") == true)
        #expect(machine.phase == .awaitingHello)
        #expect(machine.receiveHello(Self.hello(maxFrameBytes: 4096, initialCredit: 3), at: Self.t0) == nil)
        #expect(machine.phase == .open)
        #expect(machine.peerMaxFrameBytes == 4096)
        #expect(machine.frameArrived() == .dispatch)
        guard case .admitted(let call) = machine.admit(streamID: 1, makeCall: Call.init(credit:)) else {
            Issue.record("not admitted")
            return
        }
        #expect(call.credit == 3, "a new call gets the credit from the client's HELLO")
    }

    @Test("stream ids must be odd and rising; the highest is remembered")
    func streamIDs() {
        var machine = Self.open()
        #expect(machine.claimStreamID(2) == 0)
        #expect(machine.claimStreamID(5) == nil)
        #expect(machine.claimStreamID(3) == 5)
        #expect(machine.claimStreamID(5) == 5)
        #expect(machine.claimStreamID(7) == nil)
        #expect(machine.highestStreamID == 7)
    }

    @Test("the concurrency limit refuses the call over it; ending one makes room")
    func concurrencyLimit() {
        var machine = Self.open(maxConcurrentCalls: 2)
        #expect(machine.claimStreamID(1) == nil)
        guard case .admitted = machine.admit(streamID: 1, makeCall: Call.init(credit:)) else {
            Issue.record("the first call should be admitted")
            return
        }
        #expect(machine.claimStreamID(3) == nil)
        guard case .admitted = machine.admit(streamID: 3, makeCall: Call.init(credit:)) else {
            Issue.record("the second call should be admitted")
            return
        }
        #expect(machine.claimStreamID(5) == nil)
        guard case .refused(let error) = machine.admit(streamID: 5, makeCall: Call.init(credit:)) else {
            Issue.record("the third call should be refused")
            return
        }
        #expect(error.code == .resourceExhausted)
        #expect(machine.removeCall(1, at: Self.t0)?.then == .nothing)
        #expect(Self.admit(&machine, 7) != nil)
    }

    @Test("a call ends once: a second end (CANCEL after the reply, a late deadline) finds nothing")
    func endOnce() {
        var machine = Self.open()
        let call = Self.admit(&machine, 1)!
        #expect(machine.isOpen(call, streamID: 1))
        let removed = machine.removeCall(1, at: Self.t0)
        #expect(removed?.call === call)
        #expect(removed?.then == .nothing)
        #expect(machine.removeCall(1, at: Self.t0) == nil)
        #expect(!machine.isOpen(call, streamID: 1))
        #expect(machine.idleTimerFired(at: Self.t0 + .seconds(300), timeout: .seconds(300)) == .shutDown, "idle since the call ended")
    }

    @Test("draining refuses new calls, lets open ones finish, and closes after the last")
    func draining() {
        var machine = Self.open()
        Self.admit(&machine, 1)
        Self.admit(&machine, 3)
        let shutdown = machine.beginGracefulShutdown()
        #expect(shutdown?.lastStreamID == 3)
        #expect(shutdown?.closeNow == false)
        #expect(machine.beginGracefulShutdown() == nil, "GOAWAY goes out once")
        #expect(machine.claimStreamID(5) == nil)
        guard case .refused(let error) = machine.admit(streamID: 5, makeCall: Call.init(credit:)) else {
            Issue.record("a call after GOAWAY should be refused")
            return
        }
        #expect(error.code == .unavailable)
        #expect(machine.removeCall(1, at: Self.t0)?.then == .nothing)
        #expect(machine.removeCall(3, at: Self.t0)?.then == .close)
        #expect(
            machine.idleTimerFired(at: Self.t0 + .seconds(300), timeout: .seconds(300)) == .stop,
            "a draining connection is not shut down again by the idle timer")
    }

    @Test("the idle timer measures from HELLO and from the end of the last call, never during one")
    func idleTimer() {
        let timeout = Duration.seconds(300)
        var machine = Self.open(at: Self.t0)
        #expect(machine.idleTimerFired(at: Self.t0 + .seconds(100), timeout: timeout) == .checkAgain(after: .seconds(200)))
        Self.admit(&machine, 1)
        Self.admit(&machine, 3)
        #expect(
            machine.idleTimerFired(at: Self.t0 + .seconds(300), timeout: timeout) == .checkAgain(after: timeout),
            "a call is open: not idle, whatever the time")
        #expect(machine.removeCall(1, at: Self.t0 + .seconds(310))?.then == .nothing)
        #expect(
            machine.idleTimerFired(at: Self.t0 + .seconds(650), timeout: timeout) == .checkAgain(after: timeout),
            "one call is still open")
        #expect(machine.removeCall(3, at: Self.t0 + .seconds(700))?.then == .nothing)
        #expect(
            machine.idleTimerFired(at: Self.t0 + .seconds(950), timeout: timeout) == .checkAgain(after: .seconds(50)),
            "idle since the last call ended, 250 s ago")
        #expect(machine.idleTimerFired(at: Self.t0 + .seconds(1000), timeout: timeout) == .shutDown)
        #expect(machine.beginGracefulShutdown()?.closeNow == true)
        #expect(machine.idleTimerFired(at: Self.t0 + .seconds(2000), timeout: timeout) == .stop, "draining: nothing to watch")
    }

    @Test("an idle connection closes at once on GOAWAY")
    func drainingIdle() {
        var machine = Self.open()
        #expect(machine.beginGracefulShutdown()?.closeNow == true)
    }

    @Test("closing hands back the open calls once, and drops every frame after")
    func closed() {
        var machine = Self.open()
        let first = Self.admit(&machine, 1)!
        let second = Self.admit(&machine, 3)!
        let calls = machine.connectionClosed()
        #expect(calls?.count == 2)
        #expect(calls?.contains { $0 === first } == true)
        #expect(calls?.contains { $0 === second } == true)
        #expect(machine.connectionClosed() == nil)
        #expect(machine.frameArrived() == .drop)
        #expect(machine.closeWithError() == nil)
        #expect(machine.keepaliveFired() == .stop)
    }

    @Test("an error close names the highest stream and happens once")
    func closeWithError() {
        var machine = Self.open()
        Self.admit(&machine, 9)
        #expect(machine.closeWithError() == 9)
        #expect(machine.phase == .draining)
        _ = machine.connectionClosed()
        #expect(machine.closeWithError() == nil)
    }

    @Test("keepalive: traffic rearms, quiet sends one PING, an unanswered PING closes")
    func keepalive() {
        var machine = Self.open()
        _ = machine.frameArrived()
        #expect(machine.keepaliveFired() == .rearm)
        #expect(machine.keepaliveFired() == .ping)
        #expect(machine.keepaliveFired() == .close)

        var answered = Self.open()
        #expect(answered.keepaliveFired() == .ping)
        _ = answered.frameArrived()
        answered.pingAcknowledged()
        #expect(answered.keepaliveFired() == .rearm)
        #expect(answered.keepaliveFired() == .ping)
    }

    @Test("an oversized frame: connection, call, refused stream, or a late frame")
    func oversized() {
        var machine = Self.open()
        Self.admit(&machine, 1)
        #expect(machine.oversizedFrame(type: .message, streamID: 0) == .closeConnection)
        #expect(machine.oversizedFrame(type: .message, streamID: 1) == .endCall)
        #expect(machine.oversizedFrame(type: .message, streamID: 3) == .ignore)
        #expect(machine.oversizedFrame(type: .headers, streamID: 5) == .refuseStream)
        #expect(machine.highestStreamID == 5, "a refused HEADERS still uses up its stream id")
        #expect(machine.claimStreamID(5) == 5)
    }

    @Test("force close hands back every open call")
    func forceClose() {
        var machine = Self.open()
        Self.admit(&machine, 1)
        Self.admit(&machine, 3)
        #expect(machine.forceClose().count == 2)
        #expect(machine.calls.isEmpty)
    }
}
