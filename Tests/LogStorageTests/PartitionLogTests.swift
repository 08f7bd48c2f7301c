import Foundation
import Logging
import TestSupport
import Testing
import WallTime

@testable import LogStorage

@Suite struct PartitionLogTests {
    func config(_ change: (inout LogConfig) -> Void = { _ in }) -> LogConfig {
        var config = LogConfig()
        config.indexIntervalBytes = 256
        change(&config)
        return config
    }

    @Test func appendsAreReadBackInOrderWithTheirOffsets() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(directory: dir.path, config: config())
        let first = try await log.append([record("a", "1"), record("b", "2")])
        let second = try await log.append([record("a", "3")])
        #expect(first == .init(baseOffset: 0, lastOffset: 1, duplicate: false))
        #expect(second == .init(baseOffset: 2, lastOffset: 2, duplicate: false))
        #expect(log.highWatermark == 3)
        let all = try log.read(from: 0, maxRecords: 100, maxBytes: 1 << 20)
        #expect(all.records.map(\.offset) == [0, 1, 2])
        #expect(all.records.map(\.valueText) == ["1", "2", "3"])
        #expect(all.nextOffset == 3)
        let middle = try log.read(from: 1, maxRecords: 1, maxBytes: 1 << 20)
        #expect(middle.records.map(\.offset) == [1])
        #expect(middle.nextOffset == 2)
        #expect(try log.read(from: 3, maxRecords: 10, maxBytes: 100).records.isEmpty)
        #expect(throws: StorageError.offsetOutOfRange(requested: 4, logStartOffset: 0, highWatermark: 3)) {
            try log.read(from: 4, maxRecords: 10, maxBytes: 100)
        }
    }

    @Test func maxBytesLimitsAReadButNeverBelowOneRecord() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(directory: dir.path, config: config())
        let big = String(repeating: "x", count: 1000)
        for _ in 0..<5 { _ = try await log.append([record("k", big)]) }
        #expect(try log.read(from: 0, maxRecords: 100, maxBytes: 10).records.count == 1)
        #expect(try log.read(from: 0, maxRecords: 100, maxBytes: 2500).records.count == 2)
    }

    /// A read takes runs out of batches of several records: from every offset, with record and
    /// byte limits that stop it inside a batch, at a batch's end or in a later one, it returns
    /// what a record-at-a-time walk would, with the bytes it counted.
    @Test func readsStartAndStopAnywhereInBatchesOfSeveralRecords() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(directory: dir.path, config: config())
        var stored: [Record] = []
        for (batch, size) in [3, 1, 4, 2, 5].enumerated() {
            let records = (0..<size).map { index in record("k\(batch)", String(repeating: "v", count: 10 * (batch + 1) + index)) }
            _ = try await log.append(records)
            stored = try log.read(from: 0, maxRecords: 1000, maxBytes: 1 << 20).records
        }
        #expect(stored.count == 15)
        for from in 0...15 {
            for maxRecords in [1, 2, 3, 5, 15] {
                for maxBytes in [1, 60, 150, 400, 1 << 20] {
                    // The reference: records from `from` while both limits hold, never fewer than one.
                    var expected: [Record] = []
                    var bytes = 0
                    for record in stored[from...] {
                        if !expected.isEmpty && (expected.count >= maxRecords || bytes + record.encodedSize > maxBytes) { break }
                        expected.append(record)
                        bytes += record.encodedSize
                    }
                    let read = try log.read(from: Int64(from), maxRecords: maxRecords, maxBytes: maxBytes)
                    #expect(read.records == expected, "from \(from), \(maxRecords) records, \(maxBytes) bytes")
                    #expect(read.bytes == bytes)
                    #expect(read.nextOffset == (expected.last.map { $0.offset + 1 } ?? 15))
                }
            }
        }
    }

    @Test func segmentsRollBySizeAndEveryOffsetIsFoundThroughTheIndexAfterReopening() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = config { $0.segmentBytes = 4096 }
        do {
            let log = try PartitionLog(directory: dir.path, config: settings)
            for i in 0..<200 { _ = try await log.append([record("k\(i % 7)", "value-\(i)-" + String(repeating: "v", count: 60))]) }
            #expect(log.segmentCount > 3)
            try log.close()
        }
        let log = try PartitionLog(directory: dir.path, config: settings)
        #expect(log.highWatermark == 200)
        for offset in stride(from: 0, to: 200, by: 13) {
            let read = try log.read(from: Int64(offset), maxRecords: 1, maxBytes: 1 << 20)
            #expect(read.records.first?.offset == Int64(offset))
            #expect(read.records.first?.valueText?.hasPrefix("value-\(offset)-") == true)
        }
        let everything = try log.read(from: 0, maxRecords: 1000, maxBytes: 1 << 30)
        #expect(everything.records.map(\.offset) == Array(0..<200))
        let next = try await log.append([record("k", "after reopen")])
        #expect(next.baseOffset == 200)
    }

    @Test func segmentsRollByAge() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let clock = ManualWallClock()
        let log = try PartitionLog(directory: dir.path, config: config { $0.segmentMs = 1000 }, clock: clock)
        _ = try await log.append([record("a", "1")])
        clock.advance(by: 500)
        _ = try await log.append([record("a", "2")])
        #expect(log.segmentCount == 1)
        clock.advance(by: 600)
        _ = try await log.append([record("a", "3")])
        #expect(log.segmentCount == 2)
        clock.advance(by: 1500)
        try log.rollIfExpired()
        #expect(log.segmentCount == 3)
        try log.rollIfExpired()
        #expect(log.segmentCount == 3, "an empty active segment does not roll")
    }

    @Test func retentionByTimeDeletesWholeOldSegmentsAndMovesTheLogStart() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let clock = ManualWallClock(1_000_000)
        let log = try PartitionLog(
            directory: dir.path,
            config: config {
                $0.segmentBytes = 1024
                $0.retentionMs = 10_000
            }, clock: clock)
        for i in 0..<30 {
            _ = try await log.append([record("k", String(repeating: "r", count: 100), timestamp: clock.nowMilliseconds())])
            if i == 14 { clock.advance(by: 20_000) }
        }
        let segmentsBefore = log.segmentCount
        let result = try log.applyRetention()
        #expect(result.deletedSegments > 0)
        #expect(log.segmentCount == segmentsBefore - result.deletedSegments)
        let start = log.logStartOffset
        #expect(start > 0 && start <= 15)
        #expect(throws: StorageError.self) { try log.read(from: 0, maxRecords: 1, maxBytes: 100) }
        #expect(try log.read(from: start, maxRecords: 1, maxBytes: 100).records.first?.offset == start)
        #expect(segmentFiles(dir.path, ".log").count == log.segmentCount)
        clock.advance(by: 1_000_000)
        try log.applyRetention()
        #expect(log.segmentCount == 1, "the active segment is never deleted")
    }

    @Test func retentionBySizeKeepsTheNewestSegmentsAtOrAboveTheLimit() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(
            directory: dir.path,
            config: config {
                $0.segmentBytes = 1024
                $0.retentionBytes = 3000
                $0.retentionMs = -1
            })
        for _ in 0..<60 { _ = try await log.append([record("k", String(repeating: "s", count: 100))]) }
        try log.applyRetention()
        #expect(log.sizeInBytes >= 3000)
        #expect(log.sizeInBytes < 3000 + 1024 + 200)
        #expect(log.highWatermark == 60)
    }

    @Test func compactionKeepsTheLatestValuePerKeyWithOffsetsAndDropsOldTombstones() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let clock = ManualWallClock(1_000_000)
        let settings = config {
            $0.cleanupPolicy = .compact
            $0.segmentBytes = 512
            $0.deleteRetentionMs = 5000
        }
        var expected: [String: (offset: Int64, value: String?)] = [:]
        do {
            let log = try PartitionLog(directory: dir.path, config: settings, clock: clock)
            for i in 0..<60 {
                // key-3 is deleted at offset 38 and never written again.
                let key = i % 5 == 3 && i > 38 ? "other-\(i)" : "key-\(i % 5)"
                let value: String? = (i == 38) ? nil : "v\(i)"
                let appended = try await log.append([record(key, value, timestamp: clock.nowMilliseconds())])
                expected[key] = (appended.baseOffset, value)
            }
            _ = try await log.append([record("key-9", "last", timestamp: clock.nowMilliseconds())])
            expected["key-9"] = (60, "last")
            let result = try log.compact()
            #expect(result.recordsRemoved > 40)
            let after = try log.read(from: 0, maxRecords: 1000, maxBytes: 1 << 20).records
            var latest: [String: Record] = [:]
            for record in after { latest[record.keyText!] = record }
            for (key, want) in expected {
                #expect(latest[key]?.offset == want.offset, "\(key)")
                #expect(latest[key]?.valueText == want.value, "\(key)")
            }
            #expect(after.map(\.offset) == after.map(\.offset).sorted())
            #expect(after.contains { $0.value == nil }, "a fresh tombstone stays")
            clock.advance(by: 10_000)
            try log.compact()
            let later = try log.read(from: 0, maxRecords: 1000, maxBytes: 1 << 20).records
            #expect(!later.contains { $0.keyText == "key-3" }, "an old tombstone in a sealed segment goes")
            try log.close()
        }
        let reopened = try PartitionLog(directory: dir.path, config: settings, clock: clock)
        #expect(reopened.highWatermark == 61)
        #expect(try reopened.read(from: 60, maxRecords: 1, maxBytes: 100).records.first?.valueText == "last")
    }

    @Test func timestampLookupFindsTheFirstRecordAtOrAfter() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(directory: dir.path, config: config { $0.segmentBytes = 600 })
        for i in 0..<50 { _ = try await log.append([record("k", "v\(i)", timestamp: 1000 + Int64(i) * 10)]) }
        #expect(try log.offset(forTimestamp: 0)?.offset == 0)
        #expect(try log.offset(forTimestamp: 1255)?.offset == 26)
        #expect(try log.offset(forTimestamp: 1260)?.offset == 26)
        #expect(try log.offset(forTimestamp: 1260)?.timestamp == 1260)
        #expect(try log.offset(forTimestamp: 99_999) == nil)
    }

    @Test func idempotentProducerRetriesGetTheirOriginalOffsetsAndGapsAreRefused() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let settings = config()
        do {
            let log = try PartitionLog(directory: dir.path, config: settings)
            let first = try await log.append([record("a", "1"), record("a", "2")], producer: .init(producerId: 9, baseSequence: 0))
            let retry = try await log.append([record("a", "1"), record("a", "2")], producer: .init(producerId: 9, baseSequence: 0))
            #expect(retry == .init(baseOffset: first.baseOffset, lastOffset: first.lastOffset, duplicate: true))
            await #expect(throws: StorageError.outOfOrderSequence(producerId: 9, expected: 2, received: 5)) {
                try await log.append([record("a", "x")], producer: .init(producerId: 9, baseSequence: 5))
            }
            await #expect(throws: StorageError.outOfOrderSequence(producerId: 10, expected: 0, received: 1)) {
                try await log.append([record("a", "x")], producer: .init(producerId: 10, baseSequence: 1))
            }
            _ = try await log.append([record("a", "3")], producer: .init(producerId: 9, baseSequence: 2))
            try log.checkpoint()
            // Not in the checkpoint: found again by replaying the log after a crash.
            _ = try await log.append([record("a", "4")], producer: .init(producerId: 9, baseSequence: 3))
            #expect(log.highWatermark == 4)
        }
        let log = try PartitionLog(directory: dir.path, config: settings)
        let retryOld = try await log.append([record("a", "3")], producer: .init(producerId: 9, baseSequence: 2))
        let retryNew = try await log.append([record("a", "4")], producer: .init(producerId: 9, baseSequence: 3))
        #expect(retryOld.duplicate && retryOld.baseOffset == 2)
        #expect(retryNew.duplicate && retryNew.baseOffset == 3)
        #expect(log.highWatermark == 4)
    }

    @Test func concurrentAppendsShareFsyncs() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let fileSystem = InstrumentedFileSystem()
        // A 3 ms fsync, as on a slow disk, so the sharing does not depend on how busy the CPU is
        // (on a fast tmpfs under load, appends can trickle in one per fsync).
        fileSystem.syncDelayMicroseconds.store(3000, ordering: .relaxed)
        let log = try PartitionLog(directory: dir.path, config: config(), fileSystem: fileSystem)
        let before = fileSystem.syncs.load(ordering: .relaxed)
        let appends = 400
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<appends {
                group.addTask { _ = try await log.append([record("k\(i)", "v")]) }
            }
            try await group.waitForAll()
        }
        let syncs = fileSystem.syncs.load(ordering: .relaxed) - before
        #expect(log.highWatermark == Int64(appends))
        #expect(syncs < appends / 2, "group commit: \(syncs) fsyncs for \(appends) appends")
        #expect(syncs >= 1)
    }

    /// The scheduler decides where a sync runs, the log what it covers: every append written
    /// before the sync starts is acknowledged by it, and an append that queues behind a running
    /// sync gets one more round, asked of the scheduler again.
    @Test func aSchedulerRunsTheSyncsAndOneSyncCoversEveryAppendWrittenBeforeIt() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let fileSystem = InstrumentedFileSystem()
        let scheduler = HeldCommitScheduler()
        let log = try PartitionLog(directory: dir.path, config: config(), fileSystem: fileSystem, syncScheduler: scheduler)
        let syncsBefore = fileSystem.syncs.load(ordering: .relaxed)
        let five = Task {
            try await withThrowingTaskGroup(of: Int64.self) { group in
                for i in 0..<5 { group.addTask { try await log.append([record("k\(i)", "v")]).baseOffset } }
                return try await group.reduce(Int64(-1)) { max($0, $1) }
            }
        }
        try await poll { log.logEndOffset == 5 }
        #expect(scheduler.held == 1, "one sync asked for, however many appends wait for it")
        #expect(log.highWatermark == 0, "nothing is visible before its sync")
        scheduler.runHeld()
        #expect(try await five.value == 4)
        #expect(log.highWatermark == 5)
        #expect(fileSystem.syncs.load(ordering: .relaxed) - syncsBefore == 1, "one fdatasync for five appends")
        #expect(scheduler.held == 0, "no round is asked for when nothing waits")

        // A slow fsync, and an append that arrives while it runs.
        fileSystem.syncDelayMicroseconds.store(300_000, ordering: .relaxed)
        let sixth = Task { try await log.append([record("a", "6")]).baseOffset }
        try await poll { scheduler.held == 1 }
        let round = Task.detached { scheduler.runHeld() }
        try await poll { fileSystem.syncs.load(ordering: .relaxed) - syncsBefore == 2 }
        let seventh = Task { try await log.append([record("b", "7")]).baseOffset }
        try await poll { log.logEndOffset == 7 }
        await round.value
        #expect(try await sixth.value == 5)
        #expect(log.highWatermark == 6, "the seventh was written after the sync began")
        #expect(scheduler.held == 1, "so it asked for one more round")
        fileSystem.syncDelayMicroseconds.store(0, ordering: .relaxed)
        scheduler.runHeld()
        #expect(try await seventh.value == 6)
        #expect(log.highWatermark == 7)
    }

    @Test func aFailedFsyncIsNeverAcknowledgedAndTakesTheLogOffline() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let fileSystem = InstrumentedFileSystem()
        do {
            let log = try PartitionLog(directory: dir.path, config: config(), fileSystem: fileSystem)
            _ = try await log.append([record("a", "kept")])
            fileSystem.failSyncs.store(true, ordering: .relaxed)
            await #expect(throws: StorageError.self) { try await log.append([record("a", "lost")]) }
            fileSystem.failSyncs.store(false, ordering: .relaxed)
            await #expect(throws: StorageError.self) { try await log.append([record("a", "refused")]) }
            #expect(log.highWatermark == 1, "nothing unsynced becomes visible")
        }
        let reopened = try PartitionLog(directory: dir.path, config: config())
        let values = try reopened.read(from: 0, maxRecords: 10, maxBytes: 1 << 20).records.map(\.valueText)
        #expect(values.first == "kept")
        #expect(!values.contains("refused"))
    }

    @Test func aLongPollWakesWhenRecordsArrive() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(directory: dir.path, config: config())
        #expect(await log.waitForRecord(at: 0, timeout: .milliseconds(20)) == false)
        async let woke = log.waitForRecord(at: 0, timeout: .seconds(10))
        try await Task.sleep(for: .milliseconds(20))
        _ = try await log.append([record("k", "v")])
        #expect(await woke)
    }
}
