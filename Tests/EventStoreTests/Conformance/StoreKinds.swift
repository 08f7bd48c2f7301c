import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing
import WallTime

@testable import EventStore

/// The stores every test of the conformance suite runs against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case inMemory, sqlite
    var testDescription: String { rawValue }

    func make(in directory: TemporaryDirectory) throws -> any EventStore {
        switch self {
        case .inMemory: return InMemoryEventStore(clock: ManualWallClock(1_763_899_200_000))
        case .sqlite:
            var options = SQLiteEventStore.Options()
            options.clock = ManualWallClock(1_763_899_200_000)
            return try SQLiteEventStore(path: directory.path + "/events.sqlite", options: options)
        }
    }
}

func event(_ id: String = UUID().uuidString, type: String = "Happened", data: String = #"{"n":1}"#) -> NewEvent {
    NewEvent(eventId: id, type: type, data: Array(data.utf8), correlationId: "corr", causationId: "cause")
}

func storeError(_ body: () async throws -> Void) async -> EventStoreError? {
    do {
        try await body()
        return nil
    } catch let error as EventStoreError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}
