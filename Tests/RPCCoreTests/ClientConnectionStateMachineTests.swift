import Testing

@testable import RPCCore

/// The client connection's rules, walked without a channel.
@Suite("Client connection state machine")
struct ClientConnectionStateMachineTests {
    typealias Call = StateMachineCall
    typealias Machine = ClientConnectionStateMachine<Call>

    static func open(_ machine: inout Machine, _ streamID: UInt32, requestBytes: Int? = nil) throws(RPCError) -> Call {
        try machine.open(streamID: streamID, requestBytes: requestBytes, makeCall: Call.init(credit:))
    }

    @Test("the server's HELLO sets the credit of new calls and the request size limit")
    func hello() throws {
        var machine = Machine()
        machine.receiveHello(initialCredit: 3, maxFrameBytes: 2048)
        #expect(try Self.open(&machine, 1, requestBytes: 2048).credit == 3)
        let error = #expect(throws: RPCError.self) { try Self.open(&machine, 3, requestBytes: 2049) }
        #expect(error?.code == .resourceExhausted)
        #expect(machine.call(3) == nil, "a refused call is not in the table")
    }

    @Test("GOAWAY refuses the calls the server never saw, keeps the rest, and closes after the last")
    func goAway() throws {
        var machine = Machine()
        let seen = try Self.open(&machine, 1)
        let unseen = try Self.open(&machine, 3)
        let (refused, closeNow) = machine.receiveGoAway(lastStreamID: 1, error: RPCError(code: .unavailable, message: "bye"))
        #expect(refused.count == 1 && refused[0] === unseen)
        #expect(!closeNow)
        #expect(!machine.isUsable)
        let error = #expect(throws: RPCError.self) { try Self.open(&machine, 5) }
        #expect(error?.message == "bye")
        let removed = machine.remove(1)
        #expect(removed.call === seen)
        #expect(removed.closeNow, "the last call the server keeps ended: the connection closes")
    }

    @Test("GOAWAY on an idle connection closes it at once")
    func goAwayIdle() {
        var machine = Machine()
        #expect(machine.receiveGoAway(lastStreamID: 0, error: RPCError(code: .unavailable, message: "bye")).closeNow)
    }

    @Test("a call is removed once; removing it on a healthy connection never closes")
    func removeOnce() throws {
        var machine = Machine()
        let call = try Self.open(&machine, 1)
        #expect(machine.isOpen(call, streamID: 1))
        #expect(machine.remove(1).call === call)
        #expect(machine.remove(1).call == nil)
        #expect(!machine.isOpen(call, streamID: 1))
        #expect(machine.isUsable)
    }

    @Test("the close hands back every open call and refuses new ones")
    func closed() throws {
        var machine = Machine()
        _ = try Self.open(&machine, 1)
        _ = try Self.open(&machine, 3)
        #expect(machine.connectionClosed().count == 2)
        #expect(machine.calls.isEmpty)
        let error = #expect(throws: RPCError.self) { try Self.open(&machine, 5) }
        #expect(error?.code == .unavailable)
        #expect(!machine.remove(1).closeNow, "a closed connection is not closed again")
    }

    @Test("stream ids run out before they wrap")
    func streamIDsRunOut() {
        var machine = Machine()
        let error = #expect(throws: RPCError.self) { try Self.open(&machine, Machine.lastStreamID) }
        #expect(error?.code == .unavailable)
    }
}
