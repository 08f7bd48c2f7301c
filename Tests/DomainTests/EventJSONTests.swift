import Foundation
import JSONCoding
import Testing

@testable import Domain

/// Events code their own JSON; it must be the shape Codable reads and writes, byte for byte for
/// what the registry stored before (sorted keys), so old and new events read back either way.
@Suite struct EventJSONTests {
    static let samples: [any DomainEvent] = [
        AccountOpened(accountId: "acct-1", holder: "Ada \"The\" Lovelace / Café ☕", accountType: .savings, openingBalance: eur(0)),
        AccountOpened(accountId: "acct-2", holder: "Grace", accountType: .current, openingBalance: Money(amountMinor: Int64.max, currency: "USD")),
        FundsDeposited(accountId: "acct-1", amount: eur(1250)),
        FundsWithdrawn(accountId: "acct-1", amount: Money(amountMinor: -7, currency: "GBP")),
        AccountClosed(accountId: "acct-\\1"),
        OrderPlaced(
            orderId: "o-1", customer: Customer(email: "ada@example.com", firstName: "Ada", lastName: "Lovelace"),
            description: "tea\tfor two", quantity: 3),
    ]

    static func codable(_ event: any DomainEvent) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(event))
    }

    @Test func theRegistryWritesWhatCodableWroteAndReadsBothBack() throws {
        let registry = Domains.registry
        for event in Self.samples {
            let encoded = try EventTypeRegistry.encode(event)
            #expect(String(decoding: encoded.data, as: UTF8.self) == String(decoding: try Self.codable(event), as: UTF8.self))
            let type = Swift.type(of: event)
            // Fast reader on Codable's bytes, and Codable's reader on the fast bytes.
            let fromCodable = try registry.decode(type: encoded.type, schemaVersion: encoded.schemaVersion, data: try Self.codable(event))
            #expect(fromCodable.isEqual(to: event))
            let viaDecoder = try JSONDecoder().decode(type, from: Data(encoded.data))
            #expect(viaDecoder.isEqual(to: event))
        }
    }

    /// `storedJSON` is chosen once per type when it conforms: an event that is a `JSONMessage`
    /// (here, as in EventJSON.swift, by an extension of its own) is written by its writer, any
    /// other by JSONEncoder. The marker member shows which one wrote.
    @Test func anEventThatWritesItsOwnJSONIsStoredByItsWriter() throws {
        #expect(String(decoding: try EventTypeRegistry.encode(SelfWritten(n: 1)).data, as: UTF8.self) == #"{"by":"writer","n":1}"#)
        #expect(String(decoding: try EventTypeRegistry.encode(CodableOnly(n: 2)).data, as: UTF8.self) == #"{"n":2}"#)
    }

    @Test func badStoredJSONIsAnErrorThatSaysWhat() throws {
        let registry = Domains.registry
        let cases: [(String, String, String)] = [
            ("FundsDeposited", #"{"accountId":"a"}"#, "missing required field 'amount'"),
            ("FundsDeposited", #"{"accountId":"a","amount":{"amountMinor":1.5,"currency":"EUR"}}"#, "amount.amountMinor"),
            (
                "AccountOpened", #"{"accountId":"a","accountType":"GOLD","holder":"h","openingBalance":{"amountMinor":0,"currency":"EUR"}}"#,
                "unknown account type 'GOLD'"
            ),
            ("AccountClosed", #"{"accountId":"a"} trailing"#, "unexpected data after the JSON value"),
            ("AccountClosed", #"{"accountId":null}"#, "accountId"),
        ]
        for (type, json, reason) in cases {
            #expect { _ = try registry.decode(type: type, schemaVersion: 1, data: Array(json.utf8)) } throws: {
                ($0 as? EventDecodingError)?.reason.contains(reason) == true
            }
        }
        // Members this version does not know are skipped, as Codable skips them.
        let later = try registry.decode(type: "AccountClosed", schemaVersion: 1, data: Array(#"{"reason":{"x":[1]},"accountId":"a"}"#.utf8))
        #expect(later.isEqual(to: AccountClosed(accountId: "a")))
    }
}

extension DomainEvent {
    func isEqual(to other: any DomainEvent) -> Bool { (other as? Self) == self }
}

struct SelfWritten: DomainEvent {
    static let eventType = "SelfWritten"
    var n: Int
}

extension SelfWritten: JSONMessage {
    init(json scanner: inout JSONScanner) throws { throw scanner.failure("not read in this test") }

    func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("by")
        writer.string("writer")
        writer.comma()
        writer.key("n")
        writer.integer(Int64(n))
        writer.comma()
        writer.endObject()
    }
}

struct CodableOnly: DomainEvent {
    static let eventType = "CodableOnly"
    var n: Int
}
