import RPCCore
import Testing

@testable import RPCTransportHTTP2

@Suite("HTTP/2 edge: protocol mapping")
struct EdgeMappingTests {
    @Test(
        arguments: [
            ("1S", 1000), ("250m", 250), ("1n", 1), ("1500u", 2), ("2M", 120_000), ("1H", 3_600_000), ("99999999S", 99_999_999_000),
            ("0m", 0),
        ] as [(String, Int64)])
    func grpcTimeoutsBecomeWholeMillisecondsRoundedUp(text: String, milliseconds: Int64) {
        #expect(GRPCTimeout.milliseconds(text) == milliseconds)
    }

    @Test(arguments: ["", "S", "10", "123456789S", "1x", "-1S", "1.5S", " 1S"])
    func malformedGrpcTimeoutsAreRefused(text: String) {
        #expect(GRPCTimeout.milliseconds(text) == nil)
    }

    @Test func grpcMessageIsPercentEncodedUTF8() {
        #expect(PercentEncoding.encode("no account acct-42") == "no account acct-42")
        #expect(PercentEncoding.encode("100% é\n") == "100%25 %C3%A9%0A")
    }

    @Test func connectNamesAndHTTPStatusesFollowTheSpec() {
        let expected: [(StatusCode, String, Int)] = [
            (.cancelled, "canceled", 499), (.unknown, "unknown", 500), (.invalidArgument, "invalid_argument", 400),
            (.deadlineExceeded, "deadline_exceeded", 504), (.notFound, "not_found", 404), (.alreadyExists, "already_exists", 409),
            (.permissionDenied, "permission_denied", 403), (.resourceExhausted, "resource_exhausted", 429),
            (.failedPrecondition, "failed_precondition", 400), (.aborted, "aborted", 409), (.outOfRange, "out_of_range", 400),
            (.unimplemented, "unimplemented", 501), (.internalError, "internal", 500), (.unavailable, "unavailable", 503),
            (.dataLoss, "data_loss", 500), (.unauthenticated, "unauthenticated", 401),
        ]
        for (code, name, status) in expected {
            #expect(ConnectCode.name(code) == name)
            #expect(ConnectCode.httpStatus(code) == status)
        }
    }

    @Test func contentTypesChooseTheProtocol() {
        #expect(EdgeProtocol(contentType: "application/grpc") == .grpc(contentType: "application/grpc"))
        #expect(EdgeProtocol(contentType: "application/grpc+json") == .grpc(contentType: "application/grpc+json"))
        #expect(EdgeProtocol(contentType: "application/json; charset=utf-8") == .connectUnary)
        #expect(EdgeProtocol(contentType: "Application/Connect+JSON") == .connectStreaming)
        #expect(EdgeProtocol(contentType: "application/grpc+proto") == nil)
        #expect(EdgeProtocol(contentType: "text/plain") == nil)
        #expect(EdgeProtocol(contentType: nil) == nil)
    }

    @Test func statusFieldsCarryCodeMessageDetailsAndMetadata() {
        let error = RPCError.invalidArgument("bad", violations: [FieldViolation(field: "amount", description: "must be > 0")])
        var trailers = Trailers(error)
        trailers.metadata = ["x-request-id": "r-1", "grpc-internal": "dropped"]
        let fields = Dictionary(uniqueKeysWithValues: EdgeReplies.grpcStatus(trailers).map { ($0.name, $0.value) })
        #expect(fields["grpc-status"] == "3")
        #expect(fields["grpc-message"] == "bad")
        #expect(fields["x-request-id"] == "r-1")
        #expect(fields["grpc-internal"] == nil)
        #expect(fields[EdgeReplies.detailsTrailer] != nil)

        let end = String(decoding: EdgeReplies.connectEndOfStream(trailers), as: UTF8.self)
        #expect(end.contains(#""code":"invalid_argument""#))
        #expect(end.contains(#""x-request-id":["r-1"]"#))
        #expect(String(decoding: EdgeReplies.connectEndOfStream(Trailers(code: 0)), as: UTF8.self) == "{}")
    }
}

@Suite("HTTP/2 edge: envelopes")
struct EnvelopeReaderTests {
    @Test func messagesSplitAcrossAnyChunksComeOutWhole() throws {
        let bytes =
            EnvelopeReader.frame(Array(#"{"a":1}"#.utf8)) + EnvelopeReader.frame([], flags: 2) + EnvelopeReader.frame(Array("xyz".utf8), flags: 1)
        var reader = EnvelopeReader(maxMessageBytes: 100)
        var out: [EnvelopeReader.Envelope] = []
        for byte in bytes {
            [byte].withUnsafeBytes { reader.append($0) }
            while let envelope = try reader.next() { out.append(envelope) }
        }
        #expect(
            out == [.init(flags: 0, payload: Array(#"{"a":1}"#.utf8)), .init(flags: 2, payload: []), .init(flags: 1, payload: Array("xyz".utf8))])
        #expect(reader.bufferedBytes == 0)
    }

    @Test func anOversizedMessageIsRefusedFromItsPrefixAlone() {
        var reader = EnvelopeReader(maxMessageBytes: 10)
        ([0, 0, 0, 0, 11] as [UInt8]).withUnsafeBytes { reader.append($0) }
        #expect(throws: EnvelopeReader.Failure.tooLarge(length: 11, limit: 10)) { try reader.next() }
    }
}
