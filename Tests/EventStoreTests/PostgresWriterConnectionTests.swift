import EventStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresConnections
import PostgresNIO
import RPCTransportNIO
import Testing

@testable import PostgresEventStore

/// The PostgreSQL store's writer keeps its connection between batches (a lone client's next
/// command finds it waiting there): a pooled one, or one of its own on its callers' event loop
/// (`WriterClients`). That must never cost an append or a read.
/// (A time limit: a statement sent on a connection the server closed is never answered.)
@Suite(.enabled(if: TestPostgres.client != nil, "JFRAME_TEST_POSTGRES_URL is not set"), .timeLimit(.minutes(1)))
struct PostgresWriterConnectionTests {
    /// A connection the server dropped while the writer waited on it (a restart, an
    /// administrator's `pg_terminate_backend`) is replaced before the next batch, which succeeds:
    /// a pooled writer's (a store opened on a shared client) and a writer's own on its loop
    /// (`connect`).
    @Test(arguments: [false, true])
    func aWriterConnectionLostBetweenBatchesIsReplacedWithoutFailingTheNextAppend(ownConnection: Bool) async throws {
        let (store, client, schema): (PostgresEventStore, PostgresClient, String)
        if ownConnection {
            let schemaName = TestPostgres.freshSchema()
            store = try await PostgresEventStore.connect(url: Self.url(pool: 4, schema: schemaName))
            client = try #require(TestPostgres.client)
            schema = schemaName
        } else {
            (store, client, schema) = try await TestPostgres.freshStore()
        }
        defer { if ownConnection { store.close() } }
        _ = try await store.append(AppendRequest(streamId: "A-1", expected: .noStream, events: [event()], commandId: "c1"))

        let terminated = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE pid <> pg_backend_pid() AND query LIKE '%\(schema).append_rows%'
                    """), logger: Logger(label: "test")
        ).collect().count
        #expect(terminated == 1, "the writer's session, idle since its batch")
        try await Task.sleep(for: .milliseconds(300))  // the client sees the connection close

        let next = try await store.append(AppendRequest(streamId: "A-1", expected: .exact(1), events: [event()], commandId: "c2"))
        #expect(next.version == 2)
        #expect(try await store.headPosition() == 2)
    }

    /// With nothing to write, the writer hands its connection back after `writerIdleRelease`: a
    /// read that needs it gets it then, well within the wait for a connection.
    @Test func anIdleWriterHandsItsConnectionBackForReads() async throws {
        var options = PostgresEventStore.Options()
        options.writerIdleRelease = .milliseconds(300)
        options.connectionWait = .seconds(3)
        options.writerConnectionPerLoop = false  // the writer on the shared pool, as with `open(client:)`
        let store = try await PostgresEventStore.connect(url: Self.url(pool: 2), options: options)
        defer { store.close() }
        _ = try await store.append(AppendRequest(streamId: "A-1", expected: .noStream, events: [event()], commandId: "c1"))
        // The pool's other connection, held for longer than the read may wait.
        let holder = Task { try await store.withConnection { _ in try await Task.sleep(for: .seconds(5)) } }
        defer { holder.cancel() }
        try await Task.sleep(for: .milliseconds(100))

        let started = ContinuousClock.now
        let events = try await store.readStream("A-1", fromVersion: 1, maxCount: 10)
        let waited = ContinuousClock.now - started
        #expect(events.count == 1)
        #expect(waited < .seconds(2), "the writer's connection came back after its idle wait: \(waited)")
    }

    /// A pool of one connection: the writer hands it back after every batch.
    @Test func withOneConnectionTheWriterKeepsNoneBetweenBatches() async throws {
        var options = PostgresEventStore.Options()
        options.connectionWait = .seconds(3)
        let store = try await PostgresEventStore.connect(url: Self.url(pool: 1), options: options)
        defer { store.close() }
        #expect(store.options.writerIdleRelease == .zero)
        _ = try await store.append(AppendRequest(streamId: "A-1", expected: .noStream, events: [event()], commandId: "c1"))
        let started = ContinuousClock.now
        #expect(try await store.readStream("A-1", fromVersion: 1, maxCount: 10).count == 1)
        #expect(ContinuousClock.now - started < .milliseconds(800), "not held for the default idle second")
        _ = try await store.append(AppendRequest(streamId: "A-1", expected: .exact(1), events: [event()], commandId: "c2"))
        #expect(try await store.headPosition() == 2)
    }

    /// The batch's call is prepared once per connection under a name of its schema's: stores of
    /// two schemas taking turns on one connection each write into their own tables.
    @Test func storesOfTwoSchemasOnOneConnectionEachWriteTheirOwnTables() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["JFRAME_TEST_POSTGRES_URL"])
        var configuration = try PostgresLocation(url: url).configuration
        configuration.options.maximumConnections = 1
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "test-postgres"))
        let running = Task { await client.run() }
        defer { running.cancel() }
        var stores: [PostgresEventStore] = []
        for _ in 0..<2 {
            var options = PostgresEventStore.Options()
            options.schema = TestPostgres.freshSchema()
            options.writerIdleRelease = .zero
            stores.append(try await PostgresEventStore.open(client: client, options: options))
        }
        for round in 1...3 {
            for (index, store) in stores.enumerated() {
                let appended = try await store.append(
                    AppendRequest(
                        streamId: "S-\(index)", expected: round == 1 ? .noStream : .exact(Int64(round - 1)), events: [event()],
                        commandId: "c\(round)"))
                #expect(appended.position == Int64(round), "store \(index), round \(round)")
            }
        }
        for (index, store) in stores.enumerated() {
            #expect(try await store.readStream("S-\(index)", fromVersion: 1, maxCount: 10).count == 3)
            #expect(try await store.readStream("S-\(1 - index)", fromVersion: 1, maxCount: 10).isEmpty)
        }
    }

    /// The writer writes on a connection on its callers' event loop: the first batch leases one
    /// on the loop of the append that started it, and once appends keep coming from another loop
    /// (`WriterLoopAffinity`), it moves there; every append is stored either way.
    @Test func theWriterFollowsItsCallersToTheirEventLoop() async throws {
        let store = try await PostgresEventStore.connect(url: Self.url(pool: 4))
        defer { store.close() }
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        try #require(loops.count >= 2, "this machine runs one event loop")
        func append(from loop: any EventLoop, version: Int64) async throws {
            try await Task(executorPreference: EventLoopTasks.executor(for: loop)) {
                _ = try await store.append(
                    AppendRequest(streamId: "A-1", expected: version == 1 ? .noStream : .exact(version - 1), events: [event()]))
            }.value
        }
        try await append(from: loops[0], version: 1)
        let first = store.writerLoop.withLock { $0 }
        #expect(first == ObjectIdentifier(loops[0]), "leased on the first caller's loop")
        var version: Int64 = 2
        for _ in 0..<WriterLoopAffinity.wakesBeforeMove {
            // As a remote client's next call does, each comes after the writer parked: a job
            // queued before it parks wakes nothing, and tells it nothing of its callers' loop.
            let deadline = ContinuousClock.now + .seconds(5)
            while !store.writerIsParked {
                try #require(ContinuousClock.now < deadline, "the writer parks after its batch")
                try await Task.sleep(for: .milliseconds(1))
            }
            try await append(from: loops[1], version: version)
            version += 1
        }
        try await append(from: loops[1], version: version)
        let moved = store.writerLoop.withLock { $0 }
        #expect(moved == ObjectIdentifier(loops[1]), "moved to the loop the appends come from")
        #expect(try await store.headPosition() == version)
        #expect(try await store.readStream("A-1", fromVersion: 1, maxCount: 100).count == Int(version))
    }

    private static func url(pool: Int, schema: String = TestPostgres.freshSchema()) throws -> String {
        let url = try #require(ProcessInfo.processInfo.environment["JFRAME_TEST_POSTGRES_URL"])
        return url + (url.contains("?") ? "&" : "?") + "pool=\(pool)&schema=\(schema)"
    }
}
