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
        // And through MessageCoding, which picks the generated code, per message or once per type.
        #expect(try MessageCoding.decode(M.self, from: MessageCoding.encode(message)) == message)
        let encode = MessageCoding.encoder(for: M.self)
        let decode = MessageCoding.decoder(for: M.self, checkingSchema: false)
        #expect(try encode(message) == fast(message))
        #expect(try decode(fast(message)) == message)
    }

    /// A type with no generated code (a hand-written Codable one) still goes through Foundation.
    struct Handwritten: Codable, Equatable, Sendable {
        var name: String
        var count: Int
    }

    @Test func codersChosenOncePerTypeReadAndWriteTheSame() throws {
        let plain = Handwritten(name: "a", count: 2)
        let bytes = try MessageCoding.encoder(for: Handwritten.self)(plain)
        #expect(try MessageCoding.decoder(for: Handwritten.self, checkingSchema: true)(bytes) == plain)
        #expect(try MessageCoding.decode(Handwritten.self, from: bytes) == plain)

        // A server's requests are checked against their schema; a client's responses are not.
        let request = CqrsBrokerV1.CreateTopicRequest(name: "no spaces allowed", partitions: 0)
        let payload = try MessageCoding.encode(request)
        #expect(try MessageCoding.decoder(for: CqrsBrokerV1.CreateTopicRequest.self, checkingSchema: false)(payload) == request)
        do {
            _ = try MessageCoding.decoder(for: CqrsBrokerV1.CreateTopicRequest.self, checkingSchema: true)(payload)
            Issue.record("a request that breaks its schema was accepted")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.hasPrefix("invalid CreateTopicRequest: name must match"))
            #expect(error.message.contains("partitions must be at least 1"))
        }
        // A malformed message names the type and the member, as `decode` does.
        do {
            _ = try MessageCoding.decoder(for: CqrsBrokerV1.CreateTopicRequest.self, checkingSchema: true)(Array(#"{"name":7}"#.utf8))
            Issue.record("a name that is a number was accepted")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.hasPrefix("invalid CreateTopicRequest: field 'name': "), "the generated reader's account")
        }
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

    /// An int64 string is read from its bytes where it is plain digits; every other spelling
    /// takes the slow path and must come out exactly as the schema's `-?[0-9]+` says.
    @Test func int64StringsAreReadExactlyAtTheirEdges() throws {
        func total(_ literal: String) throws -> Int64 {
            var scanner = JSONScanner(Array(#"{"count":1,"totalAmount":\#(literal),"after":[{"\u0078":"y"}]}"#.utf8))
            return try JframeTestingV1.CollectResponse(json: &scanner).totalAmount
        }
        #expect(try total(#""9223372036854775807""#) == Int64.max)
        #expect(try total(#""-9223372036854775808""#) == Int64.min)
        #expect(try total(#""-0""#) == 0)
        #expect(try total(#""007""#) == 7)
        #expect(try total(#"  "42""#) == 42)
        #expect(try total(#""\u0034\u0032""#) == 42, "escapes spell digits")
        for bad in [#""9223372036854775808""#, #""-9223372036854775809""#, #""""#, #""-""#, #""+5""#, #""1 ""#, #""4.0""#, #""12"#] {
            #expect(throws: JSONScanner.Failure.self, "\(bad)") { try total(bad) }
        }
        do {
            _ = try total(#""99999999999999999999""#)
            Issue.record("an int64 string past the range was accepted")
        } catch let failure as JSONScanner.Failure {
            #expect(failure.reason.contains("'99999999999999999999' is not a decimal int64"))
            #expect(failure.path == ["totalAmount"])
        }
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

    /// Member names are matched as bytes (`JSONKey`), not as Strings: escaped names, non-ASCII
    /// names and one-letter names must match exactly what they spell, and nothing else.
    @Test func memberNamesMatchByTheirUnescapedBytes() throws {
        // An escaped name is the member it spells.
        var scanner = JSONScanner(Array(#"{"\u0063ount":2,"tot\u0061lAmount":"5"}"#.utf8))
        #expect(try JframeTestingV1.CollectResponse(json: &scanner) == .init(count: 2, totalAmount: 5))
        // A name that only starts or ends like a known one is unknown, so skipped.
        scanner = JSONScanner(Array(#"{"count":1,"counts":7,"ount":8,"totalAmount":3,"totalAmountX":9}"#.utf8))
        #expect(try JframeTestingV1.CollectResponse(json: &scanner) == .init(count: 1, totalAmount: 3))
        // Decoders switch on the length and the first and last bytes before comparing: a name
        // that shares those with a known one, but not its middle, is unknown too.
        #expect(JSONKey(utf8: ArraySlice("cxxnt".utf8)).dispatchCode == JSONKey(utf8: ArraySlice("count".utf8)).dispatchCode)
        scanner = JSONScanner(Array(#"{"cxxnt":4,"count":1,"tXtalAmounX":"6","totalAmount":3}"#.utf8))
        #expect(try JframeTestingV1.CollectResponse(json: &scanner) == .init(count: 1, totalAmount: 3))
        // Two members of one message may share a code (schemaVersion, streamVersion): each is its own.
        scanner = JSONScanner(
            Array(
                #"{"streamVersion":"2","schemaVersion":1,"eventId":"e","streamId":"s","type":"t","position":"3","recordedAt":"r","data":{}}"#
                    .utf8))
        let stored = try CqrsCommandsV1.StoredEvent(json: &scanner)
        #expect(stored.schemaVersion == 1 && stored.streamVersion == 2 && stored.position == 3)
        var seen: [String] = []
        scanner = JSONScanner(Array(#"{"n":1,"é":2,"e\u0301":3,"\u00e9":4,"nn":5}"#.utf8))
        try scanner.fields { scanner, key in
            switch key {
            case "n": seen.append("n=\(try scanner.integer())")
            case "é": seen.append("é=\(try scanner.integer())")
            default: seen.append("other \(key.string)=\(try scanner.integer())")
            }
        }
        // "e" + U+0301 spells a different name from the one scalar é, as in JSONDecoder.
        #expect(seen == ["n=1", "é=2", "other e\u{301}=3", "é=4", "other nn=5"])
        // A name that is not UTF-8 is refused, as a string value is.
        scanner = JSONScanner([UInt8](#"{""#.utf8) + [0xC3, 0x28] + [UInt8](#"":1}"#.utf8))
        #expect(throws: JSONScanner.Failure.self) { try scanner.fields { scanner, _ in try scanner.skipValue() } }
        // Names of printable ASCII take a short path; the others the general one, with its checks:
        // a control character or a cut-off name is refused, DEL (allowed in JSON strings) and the
        // empty name are names.
        for refused in [[UInt8](#"{"a"#.utf8) + [0x09] + [UInt8](#"b":1}"#.utf8), Array(#"{"count"#.utf8), Array(#"{"a\"#.utf8)] {
            scanner = JSONScanner(refused)
            #expect(throws: JSONScanner.Failure.self) { try scanner.fields { scanner, _ in try scanner.skipValue() } }
        }
        seen = []
        scanner = JSONScanner([UInt8](#"{"a"#.utf8) + [0x7F] + [UInt8](#"":1,"":2,"count":3}"#.utf8))
        try scanner.fields { scanner, key in seen.append("\(Array(key.utf8))=\(try scanner.integer())") }
        #expect(seen == ["[97, 127]=1", "[]=2", "[99, 111, 117, 110, 116]=3"])
        // A failure inside a member names it, escapes resolved.
        let bad = Array(#"{"count":1,"tot\u0061lAmount":true}"#.utf8)
        #expect { _ = try MessageCoding.decode(JframeTestingV1.CollectResponse.self, from: bad) } throws: {
            "\($0)".contains("field 'totalAmount'")
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
            #expect(!RawJSON.isValid(bytes))
        }
        for text in accepted { #expect(RawJSON.isValid(Array(text.utf8))) }
    }

    /// Strings are scanned eight bytes at a time: whatever byte needs attention, at whichever
    /// position of whichever word, it must be found exactly where a byte-at-a-time scan finds it.
    @Test func everyByteThatNeedsAttentionIsFoundAtEveryPosition() throws {
        enum Outcome: Equatable {
            case text(String)
            case refused(String)
        }
        // A byte put in a run of x's, what `string()` gives, and whether it ends the value there.
        let cases: [([UInt8], (Int) -> Outcome, Bool)] = [
            ([0x22], { .text(String(repeating: "x", count: $0)) }, false),  // closes the string early
            ([0x5C, 0x6E], { _ in .text("\n") }, true),
            ([0x5C, 0x71], { _ in .refused("invalid escape") }, true),
            ([0x00], { _ in .refused("control character") }, true),
            ([0x1F], { _ in .refused("control character") }, true),
            ([0xC3, 0xA9], { _ in .text("\u{E9}") }, true),
            ([0xFF], { _ in .refused("invalid UTF-8") }, true),
            ([0x20], { _ in .text(" ") }, true), ([0x21], { _ in .text("!") }, true), ([0x5B], { _ in .text("[") }, true),
            ([0x5D], { _ in .text("]") }, true), ([0x7F], { _ in .text("\u{7F}") }, true), ([0x23], { _ in .text("#") }, true),
        ]
        for length in 1...40 {
            for position in 0..<length {
                for (inserted, outcome, whole) in cases {
                    let content =
                        Array(repeating: UInt8(ascii: "x"), count: position) + inserted
                        + Array(repeating: UInt8(ascii: "x"), count: length - position - 1)
                    let json = [0x22] + content + [0x22]
                    var scanner = JSONScanner(json)
                    let got: Outcome
                    do { got = .text(try scanner.string()) } catch { got = .refused("\(error)") }
                    switch outcome(position) {
                    case .text(let middle) where whole:
                        let expected = String(repeating: "x", count: position) + middle + String(repeating: "x", count: length - position - 1)
                        #expect(got == .text(expected), "byte \(inserted) at \(position) of \(length)")
                    case .text(let prefix):
                        #expect(got == .text(prefix), "byte \(inserted) at \(position) of \(length)")
                    case .refused(let reason):
                        guard case .refused(let message) = got, message.contains(reason) else {
                            Issue.record("byte \(inserted) at \(position) of \(length): \(got), expected \(reason)")
                            continue
                        }
                    }
                    // The raw path (skip, then check UTF-8) agrees with the building one.
                    let accepted: Bool
                    if case .text = got { accepted = whole } else { accepted = false }
                    #expect(RawJSON.isValid(json) == accepted, "byte \(inserted) at \(position) of \(length)")
                    #expect(((try? RawJSON(validating: json)) != nil) == accepted)
                }
            }
        }
    }

    /// The writer copies runs that need no escape whole: whatever byte needs one, at whichever
    /// position, the text must be what escaping a byte at a time gives, and read back the same.
    @Test func everyByteThatNeedsAnEscapeIsWrittenAtEveryPosition() throws {
        func escapedByteAtATime(_ text: String) -> [UInt8] {
            var out: [UInt8] = [0x22]
            for byte in text.utf8 {
                switch byte {
                case 0x22: out += Array(#"\""#.utf8)
                case 0x5C: out += Array(#"\\"#.utf8)
                case 0x0A: out += Array(#"\n"#.utf8)
                case 0x0D: out += Array(#"\r"#.utf8)
                case 0x09: out += Array(#"\t"#.utf8)
                case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
                default: out.append(byte)
                }
            }
            return out + [0x22]
        }
        let inserted = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{8}", "\u{E9}", "\u{1F600}", " ", "/", "\u{7F}", "\"\\"]
        for length in 0...40 {
            for position in 0...length {
                for middle in inserted {
                    let text = String(repeating: "x", count: position) + middle + String(repeating: "y", count: length - position)
                    var writer = JSONWriter()
                    writer.string(text)
                    #expect(writer.bytes == escapedByteAtATime(text), "\(middle.debugDescription) at \(position) of \(length)")
                    var scanner = JSONScanner(writer.bytes)
                    #expect(try scanner.string() == text)
                    #expect(try JSONDecoder().decode(String.self, from: Data(writer.bytes)) == text)
                }
            }
        }
    }

    /// The writer keeps room ahead of what it wrote and grows it: whatever the starting capacity,
    /// every member name, number and value lands whole at every position a growth can fall on,
    /// and what `finish()` hands over is exactly what was written.
    @Test func writesLandWholeWhereverTheRoomRunsOut() throws {
        let numbers: [Int64] =
            [0, 7, -7, 9, 10, 99, 100, -100, 999_999_999, 1_000_000_000, 1_733_500_000_000, .max, .min, .max - 1, .min + 1]
            + (0...18).flatMap { power -> [Int64] in
                let ten = (0..<power).reduce(Int64(1)) { product, _ in product * 10 }
                return [ten, ten - 1, -ten, -(ten - 1)]
            }
        let value = try RawJSON(validating: Array(#"{"nested":[1,"two",null]}"#.utf8))
        for capacity in [0, 1, 2, 15, 16, 17, 40, 256] {
            var writer = JSONWriter(capacity: capacity)
            var expected = ""
            writer.beginObject()
            expected += "{"
            for (index, number) in numbers.enumerated() {
                writer.key("n")
                writer.integer(number)
                writer.comma()
                writer.key("aLongerMemberName")
                writer.int64String(number)
                writer.comma()
                writer.key("v")
                writer.raw(value)
                writer.comma()
                writer.key("s")
                writer.string("tab\t\(index)")
                writer.comma()
                expected += #""n":\#(number),"aLongerMemberName":"\#(number)","v":{"nested":[1,"two",null]},"s":"tab\t\#(index)","#
            }
            writer.endObject()
            expected.removeLast()
            expected += "}"
            #expect(writer.count == expected.utf8.count)
            #expect(writer.bytes == Array(expected.utf8), "capacity \(capacity)")
            let finished = writer.finish()
            #expect(finished == Array(expected.utf8))
            #expect(writer.count == 0 && writer.bytes.isEmpty)
            writer.raw("true")
            #expect(writer.finish() == Array("true".utf8), "a finished writer writes again")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(finished)) as? [String: Any])
            #expect(object["n"] as? Int64 == numbers.last)
        }
    }

    /// Numbers round-trip at every digit count: the reader takes eighteen digits unchecked and
    /// checks the nineteenth on, the writer writes two digits at a time.
    @Test func integersRoundTripAtEveryPowerOfTen() throws {
        var numbers: [Int64] = [0, .max, .min, .max - 1, .min + 1]
        var ten: Int64 = 1
        for _ in 0...18 {
            numbers += [ten, ten - 1, ten + 1, -ten, -(ten - 1), -(ten + 1)]
            if ten <= Int64.max / 10 { ten *= 10 }
        }
        for number in numbers {
            var writer = JSONWriter()
            writer.integer(number)
            writer.comma()
            writer.int64String(number)
            let written = writer.finish()
            #expect(String(decoding: written, as: UTF8.self) == "\(number),\"\(number)\"")
            // int64String reads a number or a string: the pair is the same value twice.
            var scanner = JSONScanner(Array("[".utf8) + written + Array("]".utf8))
            #expect(try scanner.array { try $0.int64String() } == [number, number], "\(number)")
        }
        for outside in ["9223372036854775808", "-9223372036854775809", "10000000000000000000", "99999999999999999999"] {
            var scanner = JSONScanner(Array(outside.utf8))
            #expect(throws: JSONScanner.Failure.self, "\(outside)") { try scanner.integer() }
        }
    }
}
