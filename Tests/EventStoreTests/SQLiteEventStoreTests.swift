import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

@Suite struct SQLiteEventStoreTests {
    @Test func eventsSurviveClosingAndReopening() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path + "/events.sqlite"
        do {
            let store = try SQLiteEventStore(path: path)
            _ = try await store.append(AppendRequest(streamId: "D-1", expected: .noStream, events: [event("d1"), event("d2")], commandId: "c"))
            store.close()
            await #expect(throws: EventStoreError.self) {
                _ = try await store.append(AppendRequest(streamId: "D-1", expected: .any, events: [event()]))
            }
        }
        let reopened = try SQLiteEventStore(path: path)
        #expect(try await reopened.headPosition() == 2)
        #expect(try await reopened.readStream("D-1", fromVersion: 1, maxCount: 10).map(\.eventId) == ["d1", "d2"])
        #expect(try await reopened.commandResult("c")?.version == 2)
        let next = try await reopened.append(AppendRequest(streamId: "D-1", expected: .exact(2), events: [event()]))
        #expect(next.position == 3)
    }

    @Test func concurrentAppendsAreGroupCommittedWithGapFreePositions() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try SQLiteEventStore(path: dir.path + "/events.sqlite")
        let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
            for index in 0..<200 {
                group.addTask { try await store.append(AppendRequest(streamId: "G-\(index)", expected: .noStream, events: [event()])) }
            }
            return try await group.reduce(into: [AppendResult]()) { $0.append($1) }
        }
        #expect(results.map(\.position).sorted() == Array(1...200))
        let all = try await store.readAll(fromPosition: 1, maxCount: 1000)
        #expect(all.map(\.position) == Array(1...200))
    }

    /// A store whose transactions run when the test says (`HeldCommitScheduler.runHeld`).
    static func storeCommittingWhenHeld(at path: String) throws -> (SQLiteEventStore, HeldCommitScheduler) {
        let scheduler = HeldCommitScheduler()
        var options = SQLiteEventStore.Options()
        options.commitScheduler = scheduler
        return (try SQLiteEventStore(path: path, options: options), scheduler)
    }

    /// The scheduler decides where a transaction runs, the store what it holds: every append
    /// queued before it starts.
    @Test func oneScheduledTransactionCommitsEveryAppendQueuedBeforeIt() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (store, scheduler) = try Self.storeCommittingWhenHeld(at: dir.path + "/events.sqlite")
        let appended = Task {
            try await withThrowingTaskGroup(of: Int64.self) { group in
                for index in 0..<5 {
                    group.addTask { try await store.append(AppendRequest(streamId: "H-\(index)", expected: .noStream, events: [event()])).position }
                }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }.sorted()
            }
        }
        try await waitUntil("five appends queued") { store.queuedForTesting == 5 }
        #expect(scheduler.held == 1, "one transaction asked for, however many appends wait for it")
        #expect(try await store.headPosition() == 0, "nothing committed before it runs")
        scheduler.runHeld()
        #expect(try await appended.value == [1, 2, 3, 4, 5])
        #expect(scheduler.held == 0, "no round is asked for when nothing waits")
    }

    /// In a transaction of several appends, one whose stored event id is found by the unique
    /// index after its new events were written is undone alone (its savepoint): the others commit
    /// with gap-free positions.
    @Test func anAppendRefusedInsideAGroupIsUndoneAlone() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (store, scheduler) = try Self.storeCommittingWhenHeld(at: dir.path + "/events.sqlite")
        let stored = Task { try await store.append(AppendRequest(streamId: "G-0", expected: .noStream, events: [event("g0")])) }
        try await waitUntil("the first append queued") { store.queuedForTesting == 1 }
        scheduler.runHeld()
        #expect(try await stored.value.position == 1)

        let good = Task { try await store.append(AppendRequest(streamId: "G-1", expected: .noStream, events: [event("g1")])) }
        try await waitUntil("one append queued") { store.queuedForTesting == 1 }
        let mixed = Task {
            await storeError { _ = try await store.append(AppendRequest(streamId: "G-2", expected: .any, events: [event("g2"), event("g0")])) }
        }
        try await waitUntil("two appends queued") { store.queuedForTesting == 2 }
        let alsoGood = Task { try await store.append(AppendRequest(streamId: "G-3", expected: .noStream, events: [event("g3")])) }
        try await waitUntil("three appends queued") { store.queuedForTesting == 3 }
        scheduler.runHeld()
        guard case .eventIdConflict? = await mixed.value else {
            Issue.record("expected an event id conflict")
            return
        }
        #expect(try await good.value.position == 2)
        #expect(try await alsoGood.value.position == 3)
        #expect(try await store.readAll(fromPosition: 1, maxCount: 10).map(\.eventId) == ["g0", "g1", "g3"])
    }

    /// The writer's WAL frames (a header and a page each) leave in one system call per commit:
    /// at most half as many system calls as writes (the counts are the process's, so other tests'
    /// stores add to both; without gathering there is one call per write). What each commit
    /// wrote is there for a reader on another connection as soon as its append returns.
    @Test func aCommitsWALWritesLeaveInOneSystemCall() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try SQLiteEventStore(path: dir.path + "/events.sqlite")
        let before = SQLiteConnection.gatheredWALWrites
        for index in 1...20 {
            let appended = try await store.append(AppendRequest(streamId: "W-\(index % 3)", expected: .any, events: [event()]))
            #expect(try await store.readAll(fromPosition: appended.position, maxCount: 1).map(\.position) == [appended.position])
        }
        let after = SQLiteConnection.gatheredWALWrites
        let writes = after.writes - before.writes
        let systemCalls = after.systemCalls - before.systemCalls
        #expect(writes >= 20 * 4, "each commit writes at least two frames")
        #expect(systemCalls * 2 <= writes, "\(systemCalls) system calls for \(writes) writes")

        // A commit of more frames than one system call takes (about 2 MiB of events) goes out in
        // several, and every event reads back.
        let data = #"{"text":""# + String(repeating: "x", count: 2000) + #""}"#
        let big = try await store.append(
            AppendRequest(streamId: "W-big", expected: .noStream, events: (0..<1000).map { _ in event(data: data) }))
        let read = try await store.readStream("W-big", fromVersion: 1, maxCount: 1000)
        #expect(read.count == 1000 && read.last?.position == big.position && read.allSatisfy { $0.data == Array(data.utf8) })
    }

    /// The scheduler is told how many appends a transaction will likely cover: those waiting, or
    /// what the recent transactions took, so that a lone append on a busy store is not taken for
    /// one from a lone client.
    @Test func theSchedulerIsToldHowManyAppendsATransactionWillLikelyCover() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (store, scheduler) = try Self.storeCommittingWhenHeld(at: dir.path + "/events.sqlite")
        func appendAlone(_ stream: String) async throws {
            let appended = Task { try await store.append(AppendRequest(streamId: stream, expected: .noStream, events: [event()])) }
            try await waitUntil("the append queued") { scheduler.held == 1 }
            scheduler.runHeld()
            _ = try await appended.value
        }
        try await appendAlone("L-1")
        #expect(scheduler.covering == [1])
        let group = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<7 {
                    group.addTask { _ = try await store.append(AppendRequest(streamId: "B-\(index)", expected: .noStream, events: [event()])) }
                }
                try await group.waitForAll()
            }
        }
        try await waitUntil("seven appends queued") { store.queuedForTesting == 7 }
        scheduler.runHeld()
        try await group.value
        // One transaction took seven: the next lone append is likely to have company.
        try await appendAlone("L-2")
        #expect(scheduler.covering.last == 3)
        store.close()
    }

    @Test func anAdaptiveSchedulerCommitsALoneWriteWhereItsLoneSchedulerSays() {
        let lone = HeldCommitScheduler()
        let group = HeldCommitScheduler()
        let adaptive = AdaptiveCommitScheduler(lone: lone, group: group)
        adaptive.schedule(covering: 1) {}
        #expect((lone.held, group.held) == (1, 0))
        adaptive.schedule(covering: 2) {}
        adaptive.schedule {}
        #expect((lone.held, group.held) == (1, 2))
    }

    /// A transaction scheduled on an event loop may sit behind the very call that closes the
    /// store: close commits the queued appends itself instead of waiting for it, and the
    /// superseded round, when it runs, does nothing.
    @Test func closeCommitsWhatIsQueuedWithoutWaitingForTheScheduledRound() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path + "/events.sqlite"
        let (store, scheduler) = try Self.storeCommittingWhenHeld(at: path)
        let appended = Task { try await store.append(AppendRequest(streamId: "C-1", expected: .noStream, events: [event("c1")])) }
        try await waitUntil("the append queued") { scheduler.held == 1 }
        store.close()
        #expect(try await appended.value.position == 1)
        scheduler.runHeld()
        await #expect(throws: EventStoreError.self) { _ = try await store.append(AppendRequest(streamId: "C-2", expected: .any, events: [event()])) }
        let reopened = try SQLiteEventStore(path: path)
        #expect(try await reopened.readStream("C-1", fromVersion: 1, maxCount: 10).map(\.eventId) == ["c1"])
        #expect(try await reopened.headPosition() == 1)
    }

    /// The WAL is zero-filled ahead when the store opens, and a copy of the files taken while
    /// it runs (what a crash leaves: committed frames, then zeros) opens with every commit.
    @Test func theWALRunsAheadWithZerosAndACrashCopyRecoversEveryCommit() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path + "/events.sqlite"
        var options = SQLiteEventStore.Options()
        options.walPreallocateBytes = 1 << 20
        let store = try SQLiteEventStore(path: path, options: options)
        for index in 1...3 {
            _ = try await store.append(AppendRequest(streamId: "Z-1", expected: .exact(Int64(index - 1)), events: [event("z\(index)")]))
        }
        let walBytes = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)?.intValue ?? 0
        #expect(walBytes >= 1 << 20, "zeros ahead of the frames")
        let copy = dir.path + "/copy"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + "/events.sqlite" + suffix) }
        let recovered = try SQLiteEventStore(path: copy + "/events.sqlite")
        #expect(try await recovered.readStream("Z-1", fromVersion: 1, maxCount: 10).map(\.eventId) == ["z1", "z2", "z3"])
        #expect(try await recovered.append(AppendRequest(streamId: "Z-1", expected: .exact(3), events: [event()])).position == 4)
        recovered.close()
        store.close()
        var off = SQLiteEventStore.Options()
        off.walPreallocateBytes = 0
        let unfilled = try SQLiteEventStore(path: dir.path + "/unfilled.sqlite", options: off)
        let unfilledBytes = (try FileManager.default.attributesOfItem(atPath: dir.path + "/unfilled.sqlite-wal")[.size] as? NSNumber)?.intValue ?? 0
        #expect(unfilledBytes < 1 << 20, "nothing written ahead with 0")
        unfilled.close()
    }

    @Test func aVersionOneStoreMigratesAndKeepsItsStreamVersions() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path + "/events.sqlite"
        do {
            let store = try SQLiteEventStore(path: path)
            _ = try await store.append(AppendRequest(streamId: "a", expected: .noStream, events: [event(), event()]))
            _ = try await store.append(AppendRequest(streamId: "b", expected: .noStream, events: [event()]))
            store.close()
        }
        // Put the file back the way version 1 left it: a `streams` table beside the events, and
        // no checksums (version 3), no command digests (version 4), no trace context (version 5).
        let old = try SQLiteConnection(path: path)
        try old.execute(
            """
            ALTER TABLE events DROP COLUMN trace_parent;
            ALTER TABLE events DROP COLUMN checksum;
            ALTER TABLE commands DROP COLUMN digest;
            CREATE TABLE streams(stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO streams VALUES('a', 2), ('b', 1);
            PRAGMA user_version = 1;
            """)
        let store = try SQLiteEventStore(path: path)
        defer { store.close() }
        #expect(try store.writer.first("PRAGMA user_version") { $0.int64(0) } == 5)
        #expect(try store.writer.first("SELECT count(*) FROM sqlite_master WHERE name = 'streams'") { $0.int64(0) } == 0)
        #expect(try await store.readAll(fromPosition: 1, maxCount: 10).count == 3, "the old events got checksums that verify")
        #expect(try await store.streamVersion("a") == 2)
        #expect(try await store.streamVersion("b") == 1)
        #expect(try await store.streamVersion("c") == 0)
        var traced = event()
        traced.traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let next = try await store.append(AppendRequest(streamId: "a", expected: .exact(2), events: [traced]))
        #expect(next.version == 3)
        #expect(try await store.readAll(fromPosition: 4, maxCount: 1).first?.traceParent == traced.traceParent)
        await #expect(throws: EventStoreError.self) {
            try await store.append(AppendRequest(streamId: "b", expected: .exact(0), events: [event()]))
        }
    }

    @Test func aStreamsVersionIsOneIndexSeekNotAScan() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try SQLiteEventStore(path: dir.path + "/events.sqlite")
        defer { store.close() }
        let plan = try store.writer.query("EXPLAIN QUERY PLAN " + SQLiteEventStore.streamVersionQuery, .text("a")) { $0.text(3) }
        #expect(plan.count == 1)
        #expect(plan.first?.contains("SEARCH events USING COVERING INDEX") == true, "\(plan)")
        #expect(plan.first?.contains("stream_id=?") == true, "\(plan)")
    }

    @Test func aNewStoreHasSmallPagesAndAnOlderFileKeepsItsOwn() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try SQLiteEventStore(path: dir.path + "/new.sqlite")
        #expect(try store.writer.first("PRAGMA page_size") { $0.int64(0) } == Int64(SQLiteEventStore.pageSize))
        store.close()

        // A file made with SQLite's default page size, as builds before this one made them.
        let olderPath = dir.path + "/older.sqlite"
        do {
            let older = try SQLiteConnection(path: olderPath)
            try older.execute("PRAGMA page_size=4096; PRAGMA journal_mode=WAL;")
            try SQLiteEventStore.migrate(older)
        }
        let reopened = try SQLiteEventStore(path: olderPath)
        _ = try await reopened.append(AppendRequest(streamId: "P-1", expected: .noStream, events: [event("p1")]))
        #expect(try reopened.writer.first("PRAGMA page_size") { $0.int64(0) } == 4096)
        #expect(try await reopened.readStream("P-1", fromVersion: 1, maxCount: 10).map(\.eventId) == ["p1"])
    }

    @Test func theFileUsesWALAndFullSynchronous() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try SQLiteEventStore(path: dir.path + "/events.sqlite")
        #expect(try store.writer.first("PRAGMA synchronous") { $0.int64(0) } == 2, "2 is FULL: the WAL is synced at every commit")
        let other = try SQLiteConnection(path: dir.path + "/events.sqlite")
        #expect(try other.first("PRAGMA journal_mode") { $0.text(0) } == "wal")
    }
}
