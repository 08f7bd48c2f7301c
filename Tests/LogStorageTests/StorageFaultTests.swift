import Foundation
import Synchronization
import Testing

@testable import LogStorage

/// A value shared by concurrent tasks of a test.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T { try lock.withLock { try body(&value) } }
}

/// Power cuts, torn writes and failing disks under a partition log, over many seeds. Each seed
/// runs rounds of concurrent idempotent producers; each round ends in a crash that drops the
/// writes no fsync covered and tears the last kept one, then the log is opened again and every
/// producer retries the batch it had in flight.
///
/// `LOG_FAULT_SEEDS=N` runs N seeds (default 120) and `LOG_FAULT_SEED=S` replays one.
@Suite struct StorageFaultTests {
    /// What producers were told: the offset of every acknowledged record and its value.
    final class Acknowledged: @unchecked Sendable {
        let values = Mutex<[Int64: String]>([:])
        let count = Atomic<Int>(0)
    }

    /// A producer's next batch; kept across a crash so it can be retried with the same sequence.
    struct Batch: Sendable {
        var producer: Int64
        var sequence: Int32
        var values: [String]
        var stamp: ProducerStamp { ProducerStamp(producerId: producer, baseSequence: sequence) }
        var records: [Record] { values.map { record("p\(producer)", $0) } }
    }

    static var seeds: [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let one = environment["LOG_FAULT_SEED"].flatMap(UInt64.init) { return [one] }
        let count = environment["LOG_FAULT_SEEDS"].flatMap(Int.init) ?? 120
        return (1...UInt64(count)).map { $0 }
    }

    @Test func everyAcknowledgedRecordSurvivesPowerCutsAndTornWrites() async throws {
        var tornWrites = 0
        var droppedChanges = 0
        for seed in Self.seeds {
            let (torn, dropped) = try await runSeed(seed)
            tornWrites += torn
            droppedChanges += dropped
        }
        print(
            "storage faults: \(Self.seeds.count) seeds, \(Self.seeds.count * 3) power cuts, \(tornWrites) writes torn, "
                + "\(droppedChanges) unsynced changes dropped")
        // The model must actually have torn and dropped writes, or the seeds proved nothing.
        #expect(tornWrites > Self.seeds.count / 4, "torn writes: \(tornWrites)")
        #expect(droppedChanges > Self.seeds.count, "dropped changes: \(droppedChanges)")
    }

    /// Returns how many writes the crashes tore and how many unsynced changes they dropped.
    func runSeed(_ seed: UInt64) async throws -> (torn: Int, dropped: Int) {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        var random = SeededRandom(seed: seed)
        var config = LogConfig()
        config.segmentBytes = Int.random(in: 600...4000, using: &random)
        config.indexIntervalBytes = Int.random(in: 64...512, using: &random)
        // Zero-filled space ahead of the appends, from none to more than a segment: crashes then
        // also leave zero tails, torn batches before zeros, and zeros that never reached the disk.
        let preallocate = [0, 64, 700, 8192][Int.random(in: 0...3, using: &random)]
        let producers = Int.random(in: 1...4, using: &random)
        let acknowledged = Acknowledged()
        var next = (0..<producers).map { Batch(producer: Int64($0) + 1, sequence: 0, values: []) }
        var torn = 0
        var dropped = 0

        for round in 0..<3 {
            let context = "seed \(seed) round \(round)"
            let fileSystem = CrashingFileSystem()
            let log: PartitionLog
            do {
                log = try PartitionLog(
                    directory: dir.path, config: config, fileSystem: fileSystem, preallocateBytes: preallocate)
            } catch {
                Issue.record("\(context): the log did not open after a crash: \(error)")
                return (torn, dropped)
            }
            try checkAcknowledged(acknowledged, in: log, "\(context)")
            // Fill in the batches to send, the in-flight ones unchanged.
            for i in next.indices where next[i].values.isEmpty {
                next[i].values = (0..<Int.random(in: 1...4, using: &random)).map { index in
                    "p\(next[i].producer)s\(next[i].sequence)r\(index)-" + String(repeating: "x", count: Int.random(in: 0...300, using: &random))
                }
            }
            let crashAfter = acknowledged.count.load(ordering: .relaxed) + Int.random(in: 1...25, using: &random)
            let crashSeed = random.next()
            let checkpointEvery = Int.random(in: 2...9, using: &random)
            let lengths = (0..<64).map { _ in Int.random(in: 1...4, using: &random) }
            let pads = (0..<64).map { _ in Int.random(in: 0...300, using: &random) }
            let crashed = Locked<CrashingFileSystem.CrashReport?>(nil)

            let inFlight = await withTaskGroup(of: Batch.self) { group in
                for start in next {
                    group.addTask {
                        var batch = start
                        var sent = 0
                        while true {
                            let result: PartitionLog.AppendResult
                            do {
                                result = try await log.append(batch.records, producer: batch.stamp)
                            } catch {
                                return batch
                            }
                            acknowledged.values.withLock { values in
                                for (i, value) in batch.values.enumerated() { values[result.baseOffset + Int64(i)] = value }
                            }
                            let total = acknowledged.count.add(1, ordering: .relaxed).newValue
                            if total % checkpointEvery == 0 { try? log.checkpoint() }
                            if total == crashAfter {
                                var crashRandom = SeededRandom(seed: crashSeed)
                                let report = try? fileSystem.crash(using: &crashRandom)
                                crashed.withLock { $0 = report }
                            }
                            sent += 1
                            batch = Batch(
                                producer: batch.producer, sequence: batch.sequence + Int32(batch.values.count),
                                values: (0..<lengths[sent % 64]).map {
                                    "p\(batch.producer)s\(batch.sequence + Int32(batch.values.count))r\($0)-"
                                        + String(repeating: "y", count: pads[(sent + $0) % 64])
                                })
                        }
                    }
                }
                var batches: [Batch] = []
                for await batch in group { batches.append(batch) }
                return batches
            }
            // Every task stops only on an error, and after the crash every operation fails.
            guard let report = crashed.withLock({ $0 }) else {
                Issue.record("\(context): the producers stopped before the crash; log offline: \(log.offlineReason ?? "no")")
                return (torn, dropped)
            }
            torn += report.files.filter { $0.tornAt != nil }.count
            dropped += report.files.reduce(0) { $0 + $1.pending - $1.kept }
            next = inFlight.sorted { $0.producer < $1.producer }

            // Open again and retry what was in flight: a batch that survived is answered with its
            // first offsets, one that did not is appended now; either way it is there once.
            let reopened = try PartitionLog(directory: dir.path, config: config, preallocateBytes: preallocate)
            try checkAcknowledged(acknowledged, in: reopened, "\(context) after the crash (\(report))")
            for i in next.indices {
                let result = try await reopened.append(next[i].records, producer: next[i].stamp)
                acknowledged.values.withLock { values in
                    for (j, value) in next[i].values.enumerated() { values[result.baseOffset + Int64(j)] = value }
                }
                next[i].sequence += Int32(next[i].values.count)
                next[i].values = []
            }
            try reopened.close()
        }

        let final = try PartitionLog(directory: dir.path, config: config, preallocateBytes: preallocate)
        try checkAcknowledged(acknowledged, in: final, "seed \(seed) at the end")
        let all = try readAll(final)
        let values = all.map { $0.valueText ?? "" }
        #expect(Set(values).count == values.count, "seed \(seed): a record is in the log twice")
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.offset + 1 == $1.offset }, "seed \(seed): offsets are not contiguous")
        #expect(all.count >= acknowledged.values.withLock { $0.count })
        let appended = try await final.append([record("after", "{}")])
        #expect(appended.baseOffset == final.highWatermark - 1)
        return (torn, dropped)
    }

    func readAll(_ log: PartitionLog) throws -> [Record] {
        var records: [Record] = []
        var offset = log.logStartOffset
        while offset < log.highWatermark {
            let read = try log.read(from: offset, maxRecords: 500, maxBytes: 1 << 20)
            guard let last = read.records.last else { break }
            records += read.records.filter { $0.offset >= offset }
            offset = last.offset + 1
        }
        return records
    }

    func checkAcknowledged(_ acknowledged: Acknowledged, in log: PartitionLog, _ context: String) throws {
        let expected = acknowledged.values.withLock { $0 }
        let stored = Dictionary(try readAll(log).map { ($0.offset, $0.valueText ?? "") }, uniquingKeysWith: { a, _ in a })
        let missing = expected.filter { stored[$0.key] != $0.value }
        #expect(missing.isEmpty, "\(context): \(missing.count) acknowledged records lost or changed, first at offset \(missing.keys.min() ?? -1)")
    }

    // MARK: Failing disks

    /// A write that fails part-way (a full disk, an I/O error) is never acknowledged, the log takes
    /// no more writes, and a restart cuts the partial batch and carries on, at every write.
    @Test(arguments: [ENOSPC, EIO])
    func aFailedWriteIsNeverAcknowledgedAndRestartRecovers(errno code: Int32) async throws {
        var config = LogConfig()
        config.segmentBytes = 1500
        config.indexIntervalBytes = 100
        var random = SeededRandom(seed: UInt64(code))
        for failAt in 1...40 {
            let dir = TemporaryDirectory()
            defer { dir.cleanup() }
            let fileSystem = CrashingFileSystem(
                failWrite: .init(at: failAt, errno: code, partialBytes: Int.random(in: 0...60, using: &random)))
            let log = try PartitionLog(directory: dir.path, config: config, fileSystem: fileSystem)
            var acknowledged = 0
            var failure: (any Error)?
            for i in 0..<60 {
                do {
                    _ = try await log.append([
                        record("k", "value \(i) " + String(repeating: "z", count: i * 7), timestamp: 1_700_000_000_000 + Int64(i))
                    ])
                    acknowledged += 1
                } catch {
                    failure = error
                    break
                }
            }
            let context = "write \(failAt) failed with errno \(code)"
            #expect(fileSystem.injectedFailure, "\(context)")
            guard let failure else {
                Issue.record("\(context): no append failed")
                continue
            }
            #expect("\(failure)".contains(String(cString: strerror(code))), "\(context): \(failure)")
            #expect(log.highWatermark == Int64(acknowledged), "\(context): the failed batch is visible to readers")
            #expect(log.offlineReason != nil, "\(context)")
            await #expect(throws: StorageError.self, "\(context): a later append was taken") {
                _ = try await log.append([record("k", "later")])
            }
            // The disk frees up; the process restarts.
            let reopened = try PartitionLog(directory: dir.path, config: config)
            #expect(reopened.highWatermark >= Int64(acknowledged), "\(context)")
            let values = try readAll(reopened).prefix(acknowledged).map { $0.valueText ?? "" }
            #expect(values == (0..<acknowledged).map { "value \($0) " + String(repeating: "z", count: $0 * 7) }, "\(context)")
            let next = try await reopened.append([record("k", "after")])
            #expect(next.baseOffset == reopened.highWatermark - 1, "\(context)")
        }
    }

    /// A failed fsync (EIO, ENOSPC) acknowledges none of the batches it was to cover, even when
    /// the kernel then drops the dirty pages (as Linux does after a failed fsync), and the log
    /// opens cleanly afterwards.
    @Test(arguments: [ENOSPC, EIO])
    func aFailedFsyncIsNeverAcknowledged(errno code: Int32) async throws {
        var config = LogConfig()
        config.segmentBytes = 1500
        // The first fsync is the one opening the log makes; a failure there fails the open.
        var failures = 0
        for failAt in 2...40 {
            let dir = TemporaryDirectory()
            defer { dir.cleanup() }
            let fileSystem = CrashingFileSystem(failSync: .init(at: failAt, errno: code))
            let log = try PartitionLog(directory: dir.path, config: config, fileSystem: fileSystem)
            let acknowledged = Locked<[Int64: String]>([:])
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for i in 0..<20 {
                            let value = "w\(writer)-\(i)"
                            guard let result = try? await log.append([record("k\(writer)", value)]) else { return }
                            acknowledged.withLock { $0[result.baseOffset] = value }
                        }
                    }
                }
            }
            let context = "fsync \(failAt) failed with errno \(code)"
            guard fileSystem.injectedFailure else { break }  // fewer fsyncs than that
            failures += 1
            #expect(log.offlineReason != nil, "\(context)")
            var random = SeededRandom(seed: UInt64(failAt))
            try fileSystem.crash(using: &random)
            let reopened = try PartitionLog(directory: dir.path, config: config)
            let stored = Dictionary(try readAll(reopened).map { ($0.offset, $0.valueText ?? "") }, uniquingKeysWith: { a, _ in a })
            let expected = acknowledged.withLock { $0 }
            #expect(expected.allSatisfy { stored[$0.key] == $0.value }, "\(context)")
            _ = try await reopened.append([record("k", "after")])
        }
        #expect(failures >= 10)
    }
}

extension StorageFaultTests {
    /// Any one flipped bit anywhere in a sealed segment, over many seeds, is reported as
    /// corruption when the log opens or when the records are read: never cut, never served.
    @Test func anyFlippedBitInASealedSegmentIsReportedNeverServed() async throws {
        var config = LogConfig()
        config.segmentBytes = 2048
        config.indexIntervalBytes = 200
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(directory: dir.path, config: config)
        for i in 0..<60 { _ = try await log.append([record("k\(i % 3)", #"{"n":\#(i)}"#), record(nil, "v\(i)")]) }
        try log.checkpoint()
        try log.close()
        let pristine = try readAll(try PartitionLog(directory: dir.path, config: config))
        let sealed = segmentFiles(dir.path, ".log")[1]
        let original = try Data(contentsOf: URL(fileURLWithPath: sealed))
        var random = SeededRandom(seed: 9)
        for _ in 0..<200 {
            var bytes = original
            let position = Int.random(in: 0..<bytes.count, using: &random)
            let bit = UInt8(1) << UInt8.random(in: 0..<8, using: &random)
            bytes[position] ^= bit
            try bytes.write(to: URL(fileURLWithPath: sealed))
            let context = "bit \(bit) of byte \(position)"
            do {
                let reopened = try PartitionLog(directory: dir.path, config: config)
                let records = try readAll(reopened)
                Issue.record("\(context): served \(records == pristine ? "the same" : "different") records")
            } catch let error as StorageError {
                guard case .corruption = error else {
                    Issue.record("\(context): \(error)")
                    continue
                }
            }
            #expect(fileSize(sealed) == Int64(original.count), "\(context): the segment was cut")
        }
        try original.write(to: URL(fileURLWithPath: sealed))
    }
}
