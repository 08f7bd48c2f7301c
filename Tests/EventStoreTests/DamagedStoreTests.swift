import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

/// A store must not trust its files: each way of damaging one is shown detected.
@Suite struct DamagedStoreTests {
    let dir = TemporaryDirectory()
    var path: String { dir.path + "/events.sqlite" }

    /// A store with `count` events in stream "A-1" whose data carry `marker`, closed and with
    /// its WAL folded into the database file.
    func storeOnDisk(count: Int = 40, marker: String = "7777777") async throws {
        let store = try SQLiteEventStore(path: path)
        for index in 0..<count {
            let data = #"{"amountMinor":"\#(marker)\#(index % 10)","pad":"\#(String(repeating: "x", count: 200))"}"#
            _ = try await store.append(AppendRequest(streamId: "A-1", expected: .any, events: [event(data: data)]))
        }
        store.close()
        let raw = try SQLiteConnection(path: path)
        try raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Changes one byte of the database file where `needle` first occurs.
    func changeByte(in file: String, at needle: String, to replacement: UInt8) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        let pattern = Array(needle.utf8)
        let at = try #require((0...(bytes.count - pattern.count)).first { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) })
        bytes[at] = replacement
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    @Test func oneDigitChangedInTheDatabaseFileIsDataLossNotFact() async throws {
        try await storeOnDisk()
        try changeByte(in: path, at: "77777773", to: UInt8(ascii: "8"))
        let store = try SQLiteEventStore(path: path)
        defer { store.close() }
        await #expect {
            _ = try await store.readStream("A-1", fromVersion: 1, maxCount: 100)
        } throws: { error in
            guard case EventStoreError.dataLoss(let reason) = error else { return false }
            return reason.contains("fails its checksum") && reason.contains("position 4")
        }
        await #expect(throws: EventStoreError.self) { _ = try await store.readAll(fromPosition: 1, maxCount: 100) }
        // Events before the damaged one still read.
        #expect(try await store.readAll(fromPosition: 1, maxCount: 3).count == 3)
        let report = try await store.verify()
        #expect(report.eventsChecked == 40 && report.problems.count == 1 && report.problems[0].contains("position 4"))
    }

    @Test func aDamagedPageIsFoundAtOpenAndAppendsAreRefused() async throws {
        try await storeOnDisk(count: 200)
        // Scribble over the middle of the file: b-tree pages, not the header.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let page = 4096
        #expect(bytes.count > 8 * page)
        for offset in (4 * page)..<(4 * page + 64) { bytes[offset] = 0xA5 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let store = try SQLiteEventStore(path: path)
        defer { store.close() }
        let refusal = try #require(store.writeRefusal)
        #expect(refusal.contains("quick_check"))
        await #expect {
            _ = try await store.append(AppendRequest(streamId: "B-1", expected: .noStream, events: [event()]))
        } throws: { error in
            if case EventStoreError.dataLoss = error { return true }
            return false
        }
        #expect(try await store.verify().problems.isEmpty == false)
    }

    @Test func aCheckpointBeyondTheLastEventRefusesAppends() async throws {
        try await storeOnDisk(count: 3)
        let raw = try SQLiteConnection(path: path)
        try raw.execute("INSERT INTO checkpoints(name, position) VALUES('outbox-relay', 5)")
        let store = try SQLiteEventStore(path: path)
        defer { store.close() }
        #expect(store.writeRefusal?.contains("checkpoint 'outbox-relay' is at position 5") == true)
        #expect(try await store.readAll(fromPosition: 1, maxCount: 10).count == 3, "reads go on, for recovery")
    }

    @Test func aHealthyStoreVerifiesClean() async throws {
        try await storeOnDisk(count: 25)
        let store = try SQLiteEventStore(path: path)
        defer { store.close() }
        #expect(store.writeRefusal == nil)
        var progress: [Int64] = []
        let report = try await store.verify(pageSize: 10) { progress.append($0.eventsChecked) }
        #expect(report.eventsChecked == 25 && report.problems.isEmpty && report.headPosition == 25)
        #expect(progress == [10, 20, 25])
    }
}
