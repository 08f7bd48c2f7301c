import Contracts
import JSONCoding
import ReadModels
import Testing

@testable import QueryService
@testable import RPCCore

/// The rebuild reads ReadAll pages with its own reader (`HistoryPage`) instead of the generated
/// `ReadAllResponse`: on every input it must take what the generated decoder followed by
/// `Rebuilder.projected` takes, give the same events, and refuse what they refuse.
@Suite struct HistoryPageTests {
    /// The generated path: the response as generated code reads it, then each event projected.
    static func generated(_ json: String) throws -> HistoryPage {
        var scanner = JSONScanner(Array(json.utf8))
        let page = try CommandsAPI.ReadAllResponse(json: &scanner)
        try scanner.end()
        return HistoryPage(events: try page.events.map(Rebuilder.projected), nextPosition: page.nextPosition, headPosition: page.headPosition)
    }

    static func direct(_ json: String) throws -> HistoryPage {
        var scanner = JSONScanner(Array(json.utf8))
        let page = try HistoryPage(json: &scanner)
        try scanner.end()
        return page
    }

    static func page(_ event: String, next: String = "\"8\"", head: String = "\"9\"") -> String {
        #"{"events":[\#(event)],"nextPosition":\#(next),"headPosition":\#(head)}"#
    }

    static let full =
        #"{"eventId":"0b6e1f52-4c1d-4e8a-9a53-5d2a8c1e7f00","streamId":"account-7","type":"FundsDeposited","schemaVersion":1,"#
        + #""streamVersion":"3","position":"7","recordedAt":"2026-12-06T21:01:00.123Z","correlationId":"c-1","causationId":"cmd-1","#
        + #""data":{"accountId":"account-7","amount":{"minor":"1500","currency":"EUR"},"note":"caf\u00e9 \"x\""}}"#

    @Test func aFullPageReadsAsTheGeneratedDecoderAndProjectionRead() throws {
        let json = Self.page(Self.full + "," + Self.full.replacingOccurrences(of: #""position":"7""#, with: #""position":"8""#))
        let direct = try Self.direct(json)
        let generated = try Self.generated(json)
        #expect(direct.events == generated.events)
        #expect(direct.events.count == 2)
        #expect(direct.nextPosition == 8 && direct.headPosition == 9)
        let first = try #require(direct.events.first)
        #expect(first.eventId == "0b6e1f52-4c1d-4e8a-9a53-5d2a8c1e7f00" && first.streamId == "account-7" && first.type == "FundsDeposited")
        #expect(first.schemaVersion == 1 && first.streamVersion == 3 && first.position == 7)
        #expect(first.recordedAt == 1_796_590_860_123)
        #expect(
            String(decoding: first.data, as: UTF8.self)
                == #"{"accountId":"account-7","amount":{"minor":"1500","currency":"EUR"},"note":"caf\u00e9 \"x\""}"#)
    }

    @Test func aTimeSpelledWithAnEscapeIsReadAsItsText() throws {
        let json = Self.page(Self.full.replacingOccurrences(of: "00.123Z", with: #"00.123\u005A"#))
        #expect(json.contains(#"\u005A"#))
        #expect(try Self.direct(json).events.first?.recordedAt == 1_796_590_860_123)
    }

    @Test func writtenPagesReadBackUnchanged() throws {
        let page = try Self.direct(Self.page(Self.full))
        var writer = JSONWriter()
        page.writeJSON(to: &writer)
        let json = String(decoding: writer.bytes, as: UTF8.self)
        #expect(try Self.direct(json).events == page.events)
        #expect(try Self.generated(json).events == page.events)
    }

    /// Each variant is taken by both readers with the same result, or refused by both.
    @Test(arguments: [
        // Taken: members in another order, unknown members, whitespace, nulls for the optional
        // ones, escapes in strings and numbers as plain JSON numbers, a time without fraction.
        page(
            #"{"data":[1,2],"position":"7","type":"T","streamVersion":"1","schemaVersion":2,"recordedAt":"2026-12-06T21:01:00Z","streamId":"s\u0031","eventId":"e","future":{"a":[null]}}"#
        ),
        page(
            #" { "eventId" : "e" , "streamId" : "s" , "type" : "T" , "schemaVersion" : 1 , "streamVersion" : 1 , "position" : 7 , "recordedAt" : "2026-12-06T21:01:00.000Z" , "correlationId" : null , "causationId" : null , "data" : "text" } "#
        ),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"9223372036854775807","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":null,"data":{}}"#
        ),
        page("", next: "\"1\"", head: "\"0\""),
        // A time spelled with an escape: read through the escaped path of `stringUTF8`.
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000\u005A","data":{}}"#
        ),
        // Refused: each required member missing, null or of the wrong type; times and numbers
        // that do not parse; bad JSON in data; the page's own members missing.
        page(#"{"streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#),
        page(#"{"eventId":"e","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#),
        page(
            #"{"eventId":"e","streamId":"s","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#),
        page(#"{"eventId":"e","streamId":"s","type":"T","streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#),
        page(#"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#),
        page(#"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#),
        page(#"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","data":{}}"#),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z"}"#
        ),
        page(
            #"{"eventId":null,"streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#
        ),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":"1","streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#
        ),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1.5","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#
        ),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"9223372036854775808","recordedAt":"2026-12-06T21:01:00.000Z","data":{}}"#
        ),
        page(#"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"yesterday","data":{}}"#),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06 21:01:00.000Z","data":{}}"#
        ),
        page(#"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":5,"data":{}}"#),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{"a":}}"#
        ),
        page(
            #"{"eventId":"e","streamId":"s","type":"T","schemaVersion":1,"streamVersion":"1","position":"1","recordedAt":"2026-12-06T21:01:00.000Z","data":{},"correlationId":"#
        ),
        #"{"events":[],"headPosition":"1"}"#,
        #"{"events":[],"nextPosition":"1"}"#,
        #"{"nextPosition":"1","headPosition":"1"}"#,
        #"{"events":{},"nextPosition":"1","headPosition":"1"}"#,
    ])
    func bothReadersAgree(_ json: String) throws {
        let direct = Result { try Self.direct(json) }
        let generated = Result { try Self.generated(json) }
        switch (direct, generated) {
        case (.success(let direct), .success(let generated)):
            #expect(direct.events == generated.events)
            #expect(direct.nextPosition == generated.nextPosition && direct.headPosition == generated.headPosition)
        case (.failure, .failure): break
        case (.success, .failure(let error)): Issue.record("taken here, refused by the generated decoder: \(error)")
        case (.failure(let error), .success): Issue.record("refused here, taken by the generated decoder: \(error)")
        }
    }

    @Test func aRefusalNamesTheMemberThatFailed() throws {
        let json = Self.page(Self.full.replacingOccurrences(of: "2026-12-06T21:01:00.123Z", with: "noon"))
        #expect { try Self.direct(json) } throws: { "\($0)".contains("events.[0].recordedAt") && "\($0)".contains("noon") }
        let missing = Self.page(Self.full.replacingOccurrences(of: #""type":"FundsDeposited","#, with: ""))
        #expect { try Self.direct(missing) } throws: { "\($0)".contains("missing required field 'type'") }
    }

    /// What a client of the rebuild sees: the schema's message, not the reader's type.
    @Test func aRefusedPageIsNamedAsTheSchemaNamesIt() throws {
        let json = Self.page(Self.full.replacingOccurrences(of: #""type":"FundsDeposited","#, with: ""))
        #expect { try MessageCoding.decodeGenerated(HistoryPage.self, from: Array(json.utf8)) } throws: { error in
            let message = (error as? RPCError)?.message ?? ""
            return message.hasPrefix("invalid ReadAllResponse: ") && message.contains("'type'")
        }
    }
}
