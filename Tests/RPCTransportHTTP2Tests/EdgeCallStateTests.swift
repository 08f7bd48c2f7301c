import RPCCore
import Testing

@testable import RPCTransportHTTP2

/// The edge's request flow control, walked without nghttp2 or a channel.
@Suite("HTTP/2 edge: a request's flow into the core")
struct EdgeCallStateTests {
    static func enveloped(_ messages: [String], flags: UInt8 = 0) -> [UInt8] {
        messages.flatMap { EnvelopeReader.frame(Array($0.utf8), flags: flags) }
    }

    static func grpcCall(credit: Int, requestEnded: Bool = false) -> EdgeCallState {
        var call = EdgeCallState(
            wire: .grpc(contentType: "application/grpc+json"), maxMessageBytes: 64, credit: credit, requestEnded: requestEnded)
        call.forwarded = true
        return call
    }

    static func receive(_ call: inout EdgeCallState, _ bytes: [UInt8]) -> RPCError? {
        bytes.withUnsafeBytes { call.receiveData($0) }
    }

    @Test("messages wait for credit, and the window reopens only when none wait")
    func creditHoldsMessagesAndWindow() {
        var call = Self.grpcCall(credit: 1)
        let bytes = Self.enveloped(["a", "bb", "ccc"])
        #expect(Self.receive(&call, bytes) == nil)
        var forwarding = call.takeForwardable()
        #expect(forwarding.messages == [Array("a".utf8)])
        #expect(forwarding.releaseBytes == 0, "two messages still wait: the client's window stays shut")
        #expect(call.waiting.count == 2)
        call.grantCredit(5)
        forwarding = call.takeForwardable()
        #expect(forwarding.messages == [Array("bb".utf8), Array("ccc".utf8)])
        #expect(forwarding.releaseBytes == bytes.count)
        #expect(!forwarding.endStream, "the client has not ended its request")
        #expect(call.credit == 3)
    }

    @Test("a message split over DATA chunks goes once whole")
    func splitMessage() {
        var call = Self.grpcCall(credit: 4)
        let bytes = Self.enveloped(["hello"])
        #expect(Self.receive(&call, Array(bytes[..<3])) == nil)
        #expect(call.takeForwardable().messages.isEmpty)
        #expect(Self.receive(&call, Array(bytes[3...])) == nil)
        #expect(call.takeForwardable().messages == [Array("hello".utf8)])
    }

    @Test("the end goes after the last waiting message, once")
    func endAfterMessages() {
        var call = Self.grpcCall(credit: 0)
        #expect(Self.receive(&call, Self.enveloped(["a"])) == nil)
        #expect(call.endRequest() == .forwardWaiting)
        #expect(!call.takeForwardable().endStream, "a message still waits for credit")
        call.grantCredit(1)
        let forwarding = call.takeForwardable()
        #expect(forwarding.messages.count == 1)
        #expect(forwarding.endStream)
        #expect(!call.takeForwardable().endStream)
        #expect(call.endRequest() == .nothing)
    }

    @Test("a request that ends inside a message fails")
    func endInsideMessage() {
        var call = Self.grpcCall(credit: 4)
        #expect(Self.receive(&call, Array(Self.enveloped(["hello"]).prefix(4))) == nil)
        guard case .failed(let error) = call.endRequest() else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == .invalidArgument)
    }

    @Test("a message over the limit is refused from its prefix, a compressed one as unimplemented")
    func refusals() {
        var large = Self.grpcCall(credit: 4)
        let prefix: [UInt8] = [0, 0, 0, 0, 65]
        #expect(Self.receive(&large, prefix)?.code == .resourceExhausted)

        var compressed = Self.grpcCall(credit: 4)
        #expect(Self.receive(&compressed, Self.enveloped(["x"], flags: EnvelopeReader.compressedFlag))?.code == .unimplemented)
    }

    @Test("Connect unary: the body is one message, sent whole at the end, within the limit")
    func connectUnary() {
        var call = EdgeCallState(wire: .connectUnary, maxMessageBytes: 8, credit: 1, requestEnded: false)
        call.forwarded = true
        #expect(Self.receive(&call, Array("{\"a\":".utf8)) == nil)
        #expect(call.takeForwardable() == .init(releaseBytes: 5), "unary bytes go back to the window as they come")
        #expect(Self.receive(&call, Array("1}".utf8)) == nil)
        #expect(call.endRequest() == .unaryMessage(body: Array("{\"a\":1}".utf8), releaseBytes: 2))
        #expect(call.endRequest() == .nothing)

        var tooLarge = EdgeCallState(wire: .connectUnary, maxMessageBytes: 8, credit: 1, requestEnded: false)
        #expect(Self.receive(&tooLarge, Array("123456789".utf8))?.code == .resourceExhausted)
    }

    @Test("a call the core does not know, or that is over, forwards nothing")
    func notForwarded() {
        var call = EdgeCallState(wire: .grpc(contentType: "application/grpc"), maxMessageBytes: 64, credit: 4, requestEnded: true)
        #expect(Self.receive(&call, Self.enveloped(["a"])) == nil)
        #expect(call.takeForwardable() == .init())
        #expect(call.endRequest() == .nothing)
        call.forwarded = true
        call.done = true
        #expect(call.takeForwardable() == .init())
    }
}
