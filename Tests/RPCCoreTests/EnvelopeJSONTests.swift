import Foundation
import Testing

@testable import RPCCore

@Suite("Envelope JSON")
struct EnvelopeJSONTests {
    static let headers: [CallHeaders] = [
        CallHeaders(method: "a.v1.S/M"),
        CallHeaders(method: "jframe.testing.v1.Echo/Get", timeoutMs: 250, metadata: ["x-request-id": "r-1"]),
        CallHeaders(method: "q\"u\\o\nt\u{1}é😀", timeoutMs: 0, metadata: ["k": "tab\there", "x-bin": "AAE=", "e": ""]),
        CallHeaders(method: "m", timeoutMs: -5, metadata: [:]),
    ]

    @Test(arguments: headers)
    func handWrittenHeadersAgreeWithCodableBothWays(_ headers: CallHeaders) throws {
        let viaCodable = try JSONDecoder().decode(CallHeaders.self, from: Data(headers.jsonBytes))
        #expect(viaCodable.method == headers.method)
        #expect(viaCodable.timeoutMs == headers.timeoutMs)
        #expect((viaCodable.metadata ?? [:]) == (headers.metadata ?? [:]))
        let viaScanner = try CallHeaders(jsonBytes: Array(try JSONEncoder().encode(headers)))
        #expect(viaScanner.method == headers.method)
        #expect(viaScanner.timeoutMs == headers.timeoutMs)
        #expect((viaScanner.metadata ?? [:]) == (headers.metadata ?? [:]))
    }

    @Test func unknownMembersAreSkippedAndEscapesDecoded() throws {
        let text = #" { "future" : [1, {"a": null}, "x", true, -2.5e3], "method" : "a\u00e9\ud83d\ude00\/b", "metadata": {} } "#
        let headers = try CallHeaders(jsonBytes: Array(text.utf8))
        #expect(headers.method == "aé😀/b")
        #expect(headers.metadata == Metadata())
    }

    @Test(arguments: [
        "", "{", "[]", #"{"method":1}"#, #"{"timeoutMs":5}"#, #"{"method":"m","timeoutMs":1.5}"#,
        #"{"method":"m","timeoutMs":"5"}"#, #"{"method":"m"} x"#, #"{"method":"m","metadata":{"k":1}}"#,
        #"{"method":"m""#, #"{"method":"\ud800"}"#, "{\"method\":\"a\u{1}\"}", #"{"method":"m","timeoutMs":99999999999999999999}"#,
    ])
    func malformedHeadersAreInvalidArgument(_ text: String) {
        #expect {
            _ = try CallHeaders(jsonBytes: Array(text.utf8))
        } throws: { ($0 as? RPCError)?.code == .invalidArgument }
    }

    @Test func creditRoundTripsAndRejectsOutOfRange() throws {
        #expect(try Credit(jsonBytes: Credit(n: 32).jsonBytes).n == 32)
        #expect(try JSONDecoder().decode(Credit.self, from: Data(Credit(n: 7).jsonBytes)).n == 7)
        for bad in [#"{"n":0}"#, #"{"n":-1}"#, #"{"n":2147483648}"#, #"{}"#, #"{"n":"3"}"#] {
            #expect(throws: RPCError.self) { try Credit(jsonBytes: Array(bad.utf8)) }
        }
    }
}

@Suite struct MetadataKeyTests {
    @Test func keysAreFoundWhateverTheirCase() {
        var metadata = Metadata()
        metadata["Correlation-ID"] = "c-1"
        metadata["x-request-id"] = "r-1"
        metadata["ÜBER-Key"] = "u"
        #expect(metadata["correlation-id"] == "c-1")
        #expect(metadata["CORRELATION-ID"] == "c-1")
        #expect(metadata["X-Request-Id"] == "r-1")
        #expect(metadata["über-key"] == "u")
        #expect(Set(metadata.storage.keys) == ["correlation-id", "x-request-id", "über-key"])
        #expect(Metadata(["A-B": "1"]) == ["a-b": "1"])
    }
}
