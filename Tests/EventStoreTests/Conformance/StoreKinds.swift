import CommitScheduling
import Foundation
import Logging
import PostgresConnections
import PostgresEventStore
import PostgresNIO
import SQLite
import TestSupport
import Testing
import WallTime

@testable import EventStore

/// The stores every test of the conformance suite runs against. PostgreSQL joins when
/// `JFRAME_TEST_POSTGRES_URL` names a database (`Scripts/test` starts a throwaway cluster and
/// always sets it); each of its stores lives in a schema of its own.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case inMemory, sqlite, postgres
    var testDescription: String { rawValue }

    static var allCases: [StoreKind] { TestPostgres.client == nil ? [.inMemory, .sqlite] : [.inMemory, .sqlite, .postgres] }

    func make(in directory: TemporaryDirectory) async throws -> any EventStore {
        switch self {
        case .inMemory: return InMemoryEventStore(clock: ManualWallClock(1_763_899_200_000))
        case .sqlite:
            var options = SQLiteEventStore.Options()
            options.clock = ManualWallClock(1_763_899_200_000)
            return try SQLiteEventStore(path: directory.path + "/events.sqlite", options: options)
        case .postgres:
            guard let client = TestPostgres.client else { throw EventStoreError.unavailable("JFRAME_TEST_POSTGRES_URL is not set") }
            var options = PostgresEventStore.Options()
            options.clock = ManualWallClock(1_763_899_200_000)
            options.schema = TestPostgres.freshSchema()
            return try await PostgresEventStore.open(client: client, options: options)
        }
    }
}

/// One connection pool to the test database for the whole test process, run until it exits.
enum TestPostgres {
    static let client: PostgresClient? = {
        guard let url = ProcessInfo.processInfo.environment["JFRAME_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        do {
            var configuration = try PostgresLocation(url: url).configuration
            configuration.options.maximumConnections = 64
            let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "test-postgres"))
            Task.detached { await client.run() }
            return client
        } catch {
            fatalError("JFRAME_TEST_POSTGRES_URL: \(error)")
        }
    }()

    static func freshSchema() -> String {
        "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// A store in a schema of its own on the shared pool, with that schema's name.
    static func freshStore() async throws -> (store: PostgresEventStore, client: PostgresClient, schema: String) {
        guard let client else { throw EventStoreError.unavailable("JFRAME_TEST_POSTGRES_URL is not set") }
        var options = PostgresEventStore.Options()
        options.schema = freshSchema()
        return (try await PostgresEventStore.open(client: client, options: options), client, options.schema)
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
