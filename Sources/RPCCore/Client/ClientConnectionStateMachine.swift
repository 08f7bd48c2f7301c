/// The state of one client connection and its transitions, free of I/O: the call table, what
/// the server's HELLO allows, and what GOAWAY and a close do to calls in flight.
///
/// ``ClientConnection`` holds one under its lock and performs what it decides (writes frames,
/// ends calls, closes). Generic over the call so tests can use any class.
struct ClientConnectionStateMachine<Call: AnyObject> {
    private(set) var calls: [UInt32: Call] = [:]
    /// Why new calls are refused: set by GOAWAY or the close.
    private(set) var closing: RPCError?
    private(set) var closed = false
    /// The credit the server gives each new stream for our messages (from its HELLO).
    private(set) var serverInitialCredit = ConnectionLimits.defaults.initialCredit
    /// The server's HELLO `maxFrameBytes`: a request larger than this is refused here.
    private(set) var serverMaxFrameBytes = ConnectionLimits.defaults.maxFrameBytes

    /// True while new calls may start.
    var isUsable: Bool { closing == nil && !closed }

    /// The highest stream id a connection hands out: past it the connection is used up.
    static var lastStreamID: UInt32 { UInt32.max - 2 }

    /// Registers a new call on `streamID`, or says why it cannot start.
    mutating func open(streamID: UInt32, requestBytes: Int?, makeCall: (_ serverCredit: Int) -> Call) throws(RPCError) -> Call {
        if let closing { throw closing }
        if let requestBytes, requestBytes > serverMaxFrameBytes {
            throw RPCError(
                code: .resourceExhausted,
                message: "the request of \(requestBytes) bytes exceeds the server's limit of \(serverMaxFrameBytes) bytes")
        }
        guard streamID < Self.lastStreamID else {
            throw RPCError(code: .unavailable, message: "stream ids of this connection are used up")
        }
        let call = makeCall(serverInitialCredit)
        calls[streamID] = call
        return call
    }

    func call(_ streamID: UInt32) -> Call? { calls[streamID] }

    /// Whether `call` is still the open call on its stream.
    func isOpen(_ call: Call, streamID: UInt32) -> Bool { calls[streamID] === call }

    /// Takes a call out of the table (its status came, or it was cancelled). `closeNow` when it
    /// was the last one on a connection the server is going away from.
    mutating func remove(_ streamID: UInt32) -> (call: Call?, closeNow: Bool) {
        let call = calls.removeValue(forKey: streamID)
        return (call, call != nil && calls.isEmpty && closing != nil && !closed)
    }

    mutating func receiveHello(initialCredit: Int, maxFrameBytes: Int) {
        serverInitialCredit = initialCredit
        serverMaxFrameBytes = maxFrameBytes
    }

    /// The server is going away: calls above `lastStreamID` were never seen by it and are
    /// refused with `error`; the others may finish. `closeNow` when none are left.
    mutating func receiveGoAway(lastStreamID: UInt32, error: RPCError) -> (refused: [Call], closeNow: Bool) {
        closing = error
        var refused: [Call] = []
        for (streamID, call) in calls where streamID > lastStreamID {
            refused.append(call)
            calls[streamID] = nil
        }
        return (refused, calls.isEmpty)
    }

    /// The transport closed: every open call is handed back to be ended.
    mutating func connectionClosed() -> [Call] {
        closed = true
        if closing == nil {
            closing = RPCError(code: .unavailable, message: "the connection closed")
        }
        defer { calls.removeAll() }
        return Array(calls.values)
    }
}
