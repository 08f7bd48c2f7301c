import EventStore
import Foundation
import Outbox
import WallTime

/// A store holding events as the CommandService would have appended them: `Category-id`
/// streams, JSON data, one event per append.
struct History {
    let store = InMemoryEventStore(clock: ManualWallClock(1_763_899_200_000))

    /// Appends `count` events to the stream `category-id`.
    func append(_ category: String, _ id: String, count: Int = 1, type: String = "Happened") async throws {
        for _ in 0..<count {
            _ = try await store.append(
                AppendRequest(
                    streamId: "\(category)-\(id)", expected: .any,
                    events: [NewEvent(eventId: UUID().uuidString, type: type, data: Array(#"{"id":"\#(id)"}"#.utf8), correlationId: "corr")]))
        }
    }
}

/// The topics of the relay tests: the bank's category to its topic, other categories to their own name.
let testTopics = ["BankAccount": "BankAccount", "Order": "OnNewOrder"]
