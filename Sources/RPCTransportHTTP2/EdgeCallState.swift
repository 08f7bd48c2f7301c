import RPCCore

/// One HTTP/2 request in flight at the edge, and how its request side flows into the core: a
/// value with no session and no channel, so the flow-control rules are tested on their own.
///
/// Request bytes arrive in DATA chunks. Whole messages wait here until the core's message credit
/// lets them through; the bytes go back to the HTTP/2 window only once no message waits, so a
/// client that outruns its handler is slowed by HTTP/2 itself rather than buffered without bound.
/// ``HTTP2EdgeConnection`` feeds events in and performs the ``Forwarding`` that comes out.
struct EdgeCallState {
    let wire: EdgeProtocol
    /// Whether the core knows this call (false when the edge answered it alone).
    var forwarded = false
    private var reader: EnvelopeReader
    private var unaryBody: [UInt8] = []
    /// Request messages the core will take now.
    private(set) var credit: Int
    /// Whole request messages waiting for credit.
    private(set) var waiting: [[UInt8]] = []
    /// Request bytes received but not yet given back to the HTTP/2 window.
    private(set) var unconsumed = 0
    private(set) var requestEnded = false
    /// The core has been told the request ended (END_STREAM on a MESSAGE or the HEADERS).
    var endForwarded = false
    var responseStarted = false
    var unaryReply: [UInt8]?
    /// The final status has gone out; anything more from the core is late and dropped.
    var done = false

    init(wire: EdgeProtocol, maxMessageBytes: Int, credit: Int, requestEnded: Bool) {
        self.wire = wire
        self.reader = EnvelopeReader(maxMessageBytes: maxMessageBytes)
        self.credit = credit
        self.requestEnded = requestEnded
    }

    /// What to hand the core and the HTTP/2 window now.
    struct Forwarding: Equatable {
        var messages: [[UInt8]] = []
        /// Send the core an empty MESSAGE with END_STREAM after the messages.
        var endStream = false
        /// Bytes to give back to the client's window.
        var releaseBytes = 0
    }

    /// Takes a DATA chunk. An error ends the call (a message over the limit, a compressed one,
    /// a Connect unary body over the limit).
    mutating func receiveData(_ bytes: UnsafeRawBufferPointer) -> RPCError? {
        unconsumed += bytes.count
        guard wire.isEnveloped else {
            let limit = reader.maxMessageBytes
            guard unaryBody.count + bytes.count <= limit else {
                return RPCError(code: .resourceExhausted, message: "request body exceeds the message limit of \(limit) bytes")
            }
            unaryBody.append(contentsOf: bytes)
            return nil
        }
        reader.append(bytes)
        while true {
            let envelope: EnvelopeReader.Envelope?
            do {
                envelope = try reader.next()
            } catch {
                guard case .tooLarge(let length, let limit) = error else { return nil }
                return RPCError(code: .resourceExhausted, message: "message of \(length) bytes exceeds the limit of \(limit) bytes")
            }
            guard let envelope else { return nil }
            if envelope.flags & EnvelopeReader.compressedFlag != 0 {
                return RPCError(code: .unimplemented, message: "compressed messages are not supported: send uncompressed messages")
            }
            waiting.append(envelope.payload)
        }
    }

    /// The core granted `n` more request messages.
    mutating func grantCredit(_ n: Int) {
        credit += n
    }

    /// What may go to the core now: messages within credit, the end of the request once every
    /// message went, and the window bytes once none wait.
    mutating func takeForwardable() -> Forwarding {
        var forwarding = Forwarding()
        guard forwarded, !done else { return forwarding }
        guard wire.isEnveloped else {
            // Connect unary: the body is one message, sent at END_STREAM; its bytes are within the limit.
            forwarding.releaseBytes = unconsumed
            unconsumed = 0
            return forwarding
        }
        let count = min(credit, waiting.count)
        if count > 0 {
            forwarding.messages = Array(waiting.prefix(count))
            waiting.removeFirst(count)
            credit -= count
        }
        if waiting.isEmpty {
            forwarding.releaseBytes = unconsumed
            unconsumed = 0
        }
        if waiting.isEmpty, requestEnded, !endForwarded, reader.bufferedBytes == 0 {
            endForwarded = true
            forwarding.endStream = true
        }
        return forwarding
    }

    enum EndOfRequest: Equatable {
        /// Nothing to do (not forwarded, already over, or the end already went).
        case nothing
        /// The request ended inside a message: the call fails.
        case failed(RPCError)
        /// Enveloped: forward what is now forwardable (`takeForwardable`).
        case forwardWaiting
        /// Connect unary: the whole body is the one message, sent with END_STREAM.
        case unaryMessage(body: [UInt8], releaseBytes: Int)
    }

    /// The client ended its request (END_STREAM on HEADERS or DATA).
    mutating func endRequest() -> EndOfRequest {
        requestEnded = true
        guard !done, forwarded, !endForwarded else { return .nothing }
        guard wire.isEnveloped else {
            endForwarded = true
            defer {
                unaryBody = []
                unconsumed = 0
            }
            return .unaryMessage(body: unaryBody, releaseBytes: unconsumed)
        }
        if reader.bufferedBytes > 0 {
            return .failed(RPCError(code: .invalidArgument, message: "the request ended inside a message"))
        }
        return .forwardWaiting
    }
}
