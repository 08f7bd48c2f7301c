import Testing

@testable import Domain

/// Events that change shape: OrderPlaced's version 1 (customer nested) is read as version 2
/// (customer flat) wherever stored events are read.
@Suite struct UpcastingTests {
    let version1 = Array(
        #"{"customer":{"email":"Ada@example.com","firstName":"Ada","lastName":"Lovelace"},"description":"cards","orderId":"o-1","quantity":2}"#
            .utf8)
    let placed = OrderPlaced(
        orderId: "o-1", customer: Customer(email: "Ada@example.com", firstName: "Ada", lastName: "Lovelace"), description: "cards", quantity: 2)

    @Test func newEventsAreWrittenInTheCurrentShape() throws {
        let encoded = try EventTypeRegistry.encode(placed)
        #expect(encoded.schemaVersion == 2)
        #expect(
            String(decoding: encoded.data, as: UTF8.self)
                == #"{"description":"cards","email":"Ada@example.com","firstName":"Ada","lastName":"Lovelace","orderId":"o-1","quantity":2}"#)
    }

    @Test func aVersion1DocumentIsUpcastToVersion2AndDecodes() throws {
        let registry = Domains.registry
        let upcast = try registry.upcast(type: "OrderPlaced", schemaVersion: 1, data: version1)
        #expect(upcast.schemaVersion == 2)
        #expect(upcast.data == (try EventTypeRegistry.encode(placed)).data, "the same bytes a new event is written with")
        #expect(try registry.decode(type: "OrderPlaced", schemaVersion: 1, data: version1).isEqual(to: placed))
        // The current version and other types pass through untouched (no parse, same bytes).
        let current = try EventTypeRegistry.encode(placed).data
        #expect(try registry.upcast(type: "OrderPlaced", schemaVersion: 2, data: current).data == current)
        let closed = Array(#"{"accountId":"a"}"#.utf8)
        #expect(try registry.upcast(type: "AccountClosed", schemaVersion: 1, data: closed) == (1, closed))
    }

    @Test func aFoldSeesTheSameOrderWhicheverVersionWasStored() throws {
        let registry = Domains.registry
        let old = try registry.decode(type: "OrderPlaced", schemaVersion: 1, data: version1)
        let new = try registry.decode(type: "OrderPlaced", schemaVersion: 2, data: try EventTypeRegistry.encode(placed).data)
        #expect(Order().applying([old]) == Order().applying([new]))
        #expect(Order().applying([old]).customerEmail == "Ada@example.com")
    }

    @Test func newerVersionsAndBadOldDocumentsAreRefusedNotGuessed() throws {
        let registry = Domains.registry
        #expect { _ = try registry.decode(type: "OrderPlaced", schemaVersion: 3, data: version1) } throws: {
            ($0 as? EventDecodingError)?.reason == "schema version 3 is newer than 2"
        }
        #expect { _ = try registry.upcast(type: "OrderPlaced", schemaVersion: 1, data: Array(#"{"orderId":"o"}"#.utf8)) } throws: {
            ($0 as? EventDecodingError)?.reason.contains("has no customer") == true
        }
        #expect { _ = try registry.upcast(type: "OrderPlaced", schemaVersion: 1, data: Array(#"{"customer":{"email":"e"}}"#.utf8)) } throws: {
            ($0 as? EventDecodingError)?.reason.contains("customer.firstName") == true
        }
        #expect { _ = try registry.upcast(type: "OrderPlaced", schemaVersion: 0, data: version1) } throws: { $0 is EventDecodingError }
    }

    @Test func aChainRunsEveryStepInOrder() throws {
        struct Renamed: DomainEvent {
            static let eventType = "Renamed"
            static let schemaVersion = 3
            static let upcasters = [
                EventUpcaster(from: 2) { old in
                    var members = try old.objectMembers("v2")
                    members["name"] = members.removeValue(forKey: "title")
                    return .object(members)
                },
                EventUpcaster(from: 1) { old in
                    var members = try old.objectMembers("v1")
                    members["title"] = members.removeValue(forKey: "label")
                    return .object(members)
                },
            ]
            var name: String
        }
        let registry = EventTypeRegistry([Renamed.self])
        let from1 = try registry.upcast(type: "Renamed", schemaVersion: 1, data: Array(#"{"label":"x"}"#.utf8))
        #expect(from1.schemaVersion == 3 && String(decoding: from1.data, as: UTF8.self) == #"{"name":"x"}"#)
        #expect(try registry.decode(type: "Renamed", schemaVersion: 2, data: Array(#"{"title":"y"}"#.utf8)).isEqual(to: Renamed(name: "y")))
    }
}
