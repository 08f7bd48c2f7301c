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

    static func open(maxConcurrentCalls: Int = 4) -> Machine {
        var machine = Machine(limits: limits(maxConcurrentCalls: maxConcurrentCalls))
        #expect(machine.receiveHello(hello()) == nil)
        return machine
    }

    @discardableResult
    static func admit(_ machine: inout Machine, _ streamID: UInt32) -> Call? {
        guard machine.claimStreamID(streamID) == nil else { return nil }
        guard case .admitted(let call, _) = machine.admit(streamID: streamID, makeCall: Call.init(credit:)) else { return nil }
        return call
    }

    @Test("only HELLO opens the connection, and a bad HELLO says what is wrong")
    func hello() {
        var machine = Machine(limits: Self.limits())
        #expect(machine.frameArrived() == .expectHello)
        #expect(machine.receiveHello(Self.hello(versions: [2]))?.code == .unimplemented)
        #expect(machine.receiveHello(Self.hello(versions: nil))?.code == .unimplemented)
        #expect(machine.receiveHello(Self.hello(initialCredit: 0))?.message.contains("initialCredit") == true)
        #expect(machine.receiveHello(Self.hello(maxFrameBytes: 1023))?.message.contains("maxFrameBytes") == true)
        #expect(machine.phase == .awaitingHello)
        #expect(machine.receiveHello(Self.hello(maxFrameBytes: 4096, initialCredit: 3)) == nil)
        #expect(machine.phase == .open)
        #expect(machine.peerMaxFrameBytes == 4096)
        #expect(machine.frameArrived() == .dispatch)
        guard case .admitted(let call, _) = machine.admit(streamID: 1, makeCall: Call.init(credit:)) else {
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
        guard case .admitted(_, cancelIdleTimer: true) = machine.admit(streamID: 1, makeCall: Call.init(credit:)) else {
            Issue.record("the first call should end idleness")
            return
        }
        #expect(machine.claimStreamID(3) == nil)
        guard case .admitted(_, cancelIdleTimer: false) = machine.admit(streamID: 3, makeCall: Call.init(credit:)) else {
            Issue.record("the second call is admitted without touching the idle timer")
            return
        }
        #expect(machine.claimStreamID(5) == nil)
        guard case .refused(let error) = machine.admit(streamID: 5, makeCall: Call.init(credit:)) else {
            Issue.record("the third call should be refused")
            return
        }
        #expect(error.code == .resourceExhausted)
        #expect(machine.removeCall(1)?.then == .nothing)
        #expect(Self.admit(&machine, 7) != nil)
    }

    @Test("a call ends once: a second end (CANCEL after the reply, a late deadline) finds nothing")
    func endOnce() {
        var machine = Self.open()
        let call = Self.admit(&machine, 1)!
        #expect(machine.isOpen(call, streamID: 1))
        let removed = machine.removeCall(1)
        #expect(removed?.call === call)
        #expect(removed?.then == .armIdleTimer, "the last call ended: the connection is idle")
        #expect(machine.removeCall(1) == nil)
        #expect(!machine.isOpen(call, streamID: 1))
        #expect(machine.isIdle)
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
        #expect(machine.removeCall(1)?.then == .nothing)
        #expect(machine.removeCall(3)?.then == .close)
        #expect(!machine.isIdle, "a draining connection is not shut down again by the idle timer")
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
