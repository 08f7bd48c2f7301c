import Contracts
import Foundation
import RPCCore
import Testing

/// The JSON code jframe-gen writes for each message must read and write exactly what Codable does.
@Suite("Generated JSON coding")
struct GeneratedJSONTests {
    static func fast<M: JSONMessage>(_ message: M) -> [UInt8] {
        var writer = JSONWriter()
        message.writeJSON(to: &writer)
        return writer.bytes
    }

    static func check<M: JSONMessage & Codable & Equatable>(_ message: M) throws {
        // Generated writer -> Codable reader.
        #expect(try JSONDecoder().decode(M.self, from: Data(fast(message))) == message)
        // Codable writer -> generated reader.
        var scanner = JSONScanner(Array(try JSONEncoder().encode(message)))
        #expect(try M(json: &scanner) == message)
        // And through MessageCoding, which picks the generated code.
        #expect(try MessageCoding.decode(M.self, from: MessageCoding.encode(message)) == message)
    }

    @Test func everyKindOfMemberRoundTrips() throws {
        try Self.check(JframeTestingV1.EchoMessage(id: "i\"d\n", account: "é😀", amount: -42, note: ""))
        try Self.check(JframeTestingV1.CollectResponse(count: 3, totalAmount: Int64.max))
        try Self.check(JframeTestingV1.CollectResponse(count: 0, totalAmount: Int64.min))
        try Self.check(JframeHealthV1.HealthCheckRequest())
        try Self.check(JframeHealthV1.HealthCheckRequest(service: "x"))
        try Self.check(JframeHealthV1.HealthCheckResponse(status: .serviceUnknown))
        let info = JframeReflectionV1.MethodInfo(name: "M", kind: .bidiStreaming, requestType: "a.R", responseType: "a.S", idempotent: true)
        try Self.check(
            JframeReflectionV1.ListServicesResponse(services: [
                .init(name: "a.v1.S", package: "a.v1", methods: [info, info]), .init(name: "b", package: "b", methods: []),
            ]))
        try Self.check(
            JframeReflectionV1.DescribeServiceResponse(
                service: "s",
                definition: .object(["a": .array([.integer(1), .number(2.5), .null, .bool(false), .string("x")]), "b": .object([:])])))
    }

    @Test func int64TravelsAsAStringAndIsReadFromEither() throws {
        let text = String(decoding: Self.fast(JframeTestingV1.CollectResponse(count: 1, totalAmount: 9_007_199_254_740_993)), as: UTF8.self)
        #expect(text == #"{"count":1,"totalAmount":"9007199254740993"}"#)
        var scanner = JSONScanner(Array(#"{"count":1,"totalAmount":12}"#.utf8))
        #expect(try JframeTestingV1.CollectResponse(json: &scanner).totalAmount == 12)
    }

    @Test func errorsNameTheFieldAndNullMeansAbsent() throws {
        func decode(_ text: String) throws -> JframeTestingV1.ExpandRequest {
            try MessageCoding.decode(JframeTestingV1.ExpandRequest.self, from: Array(text.utf8))
        }
        let wrongType = #"{"count":1,"message":{"id":"a","account":"b","amount":"x","note":""}}"#
        #expect { try decode(wrongType) } throws: { "\($0)".contains("field 'message.amount'") }
        #expect { try decode(#"{"count":1}"#) } throws: { "\($0)".contains("missing required field 'message'") }
        #expect { try decode(#"{"count":1,"message":null}"#) } throws: { "\($0)".contains("missing required field 'message'") }
        let request = try MessageCoding.decode(JframeHealthV1.HealthCheckRequest.self, from: Array(#"{"service":null,"future":[1,{"x":2}]}"#.utf8))
        #expect(request.service == nil)
        #expect { try decode(#"{"count":1} trailing"#) } throws: { ($0 as? RPCError)?.code == .invalidArgument }
        #expect { _ = try MessageCoding.decode(JframeHealthV1.HealthCheckResponse.self, from: Array(#"{"status":"MAYBE"}"#.utf8)) } throws: {
            "\($0)".contains("unknown ServingStatus 'MAYBE'")
        }
    }

    /// Found by fuzzing (Scripts/fuzz envelopes): a literal past Double's range became an
    /// infinity, which JSON can only write back as the string "Infinity" — a different value.
    @Test func numbersPastDoublesRangeAreRefusedNotMadeInfinite() throws {
        var scanner = JSONScanner(Array(#"{"c": 900.199254E40992}"#.utf8))
        #expect { _ = try scanner.value() } throws: { "\($0)".contains("number out of range") }
        var small = JSONScanner(Array("1e-400".utf8))
        #expect(try small.value() == .number(0))
        var quoted = JSONScanner(Array(#""Infinity""#.utf8))
        #expect(try quoted.double() == .infinity)  // proto3 JSON's spelling still reads
        var literal = JSONScanner(Array("-1e999".utf8))
        #expect { _ = try literal.double() } throws: { "\($0)".contains("number out of range") }
    }

    /// Raw values (record payloads) are checked without being built into Strings; the checks must
    /// be the same ones `string()` makes, escapes and UTF-8 included.
    @Test func rawValuesAreCheckedLikeStrings() throws {
        let accepted = [
            #""plain""#, #""with \"quote\" and \\ and \u00e9 and \ud83d\ude00""#, #"{"a":["x\ny",1,-2.5e3,true,null]}"#,
            "\"caf\u{E9} \u{1F600}\"", #""""#, "\"" + String(repeating: "x", count: 1000) + "\"",
        ]
        for text in accepted {
            let raw = try RawJSON(validating: text)
            #expect(raw.bytes == Array(text.utf8))
        }
        let refused: [([UInt8], String)] = [
            (Array("\"tab\there\"".utf8), "control character"),
            (Array(#""bad \x escape""#.utf8), "invalid escape"),
            (Array(#""lone \ud83d surrogate""#.utf8), "unpaired surrogate"),
            (Array(#""unterminated"#.utf8), "unterminated string"),
            (Array(#"{"k":"unterminated}"#.utf8), "unterminated string"),
            ([0x22, 0x61, 0xC3, 0x28, 0x22], "invalid UTF-8"),  // "a" + a broken two-byte sequence
            ([0x22, 0xFF, 0x22], "invalid UTF-8"),
        ]
        for (bytes, reason) in refused {
            #expect { _ = try RawJSON(validating: bytes) } throws: { "\($0)".contains(reason) }
        }
    }
}
