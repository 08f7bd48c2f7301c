import Foundation
import Testing

@testable import LogStorage

/// A crash is simulated by dropping a log without closing it, then damaging its files as a crash
/// or a bad disk would.
@Suite struct RecoveryTests {
    let settings: LogConfig = {
        var config = LogConfig()
        config.segmentBytes = 2048
        config.indexIntervalBytes = 200
        return config
    }()

    /// Writes `count` one-record batches; returns the byte size of the log after each batch.
    /// No zeros ahead of the appends, so the file sizes are the batches' ends.
    func populate(_ dir: String, count: Int, checkpointAfter: Int? = nil) async throws -> [Int64] {
        let log = try PartitionLog(directory: dir, config: settings, preallocateBytes: 0)
        var ends: [Int64] = []
        for i in 0..<count {
            _ = try await log.append([record("k\(i)", #"{"n":\#(i)}"#)])
            if i + 1 == checkpointAfter { try log.checkpoint() }
            ends.append(fileSize(segmentFiles(dir, ".log").last!))
        }
        return ends
    }

    @Test func aTornTailIsCutBackToTheLastWholeBatchAtEveryByte() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let ends = try await populate(dir.path, count: 12, checkpointAfter: 3)
        let active = segmentFiles(dir.path, ".log").last!
        let pristine = try Data(contentsOf: URL(fileURLWithPath: active))
        let lastTwoStart = ends[ends.count - 3]
        let activeBase = Int64(URL(fileURLWithPath: active).deletingPathExtension().lastPathComponent)!
        for cut in lastTwoStart..<Int64(pristine.count) {
            try pristine.prefix(Int(cut)).write(to: URL(fileURLWithPath: active))
            let log = try PartitionLog(directory: dir.path, config: settings)
            let whole = ends.filter { $0 <= cut && $0 > lastTwoStart }.count
            let expectedEnd = Int64(ends.count - 2 + whole)
            #expect(log.highWatermark == expectedEnd, "cut at byte \(cut)")
            #expect(fileSize(active) == (whole == 0 ? lastTwoStart : ends[ends.count - 3 + whole]), "cut at byte \(cut)")
            let read = try log.read(from: activeBase, maxRecords: 100, maxBytes: 1 << 20)
            #expect(read.records.last.map { $0.offset + 1 } ?? activeBase == expectedEnd)
            let next = try await log.append([record("again", "{}")])
            #expect(next.baseOffset == expectedEnd)
            try pristine.write(to: URL(fileURLWithPath: active))
        }
    }

    @Test func zerosWrittenAheadAreTrimmedWhenSealedOrClosedAndDroppedAfterACrash() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let log = try PartitionLog(directory: dir.path, config: settings, preallocateBytes: 4096)
        for i in 0..<30 { _ = try await log.append([record("k\(i)", #"{"n":\#(i)}"#)]) }
        let logs = segmentFiles(dir.path, ".log")
        #expect(logs.count >= 2)
        let sealedBytes = logs.dropLast().reduce(Int64(0)) { $0 + fileSize($1) }
        let activeBytes = log.sizeInBytes - sealedBytes
        #expect(activeBytes > 0, "sealed segments end at their last batch")
        #expect(fileSize(logs.last!) > activeBytes, "the active segment runs ahead with zeros")
        #expect(fileSize(logs.last!) <= activeBytes + 4096)
        let end = log.highWatermark

        // A crash: the log is dropped without closing, its zeros still on disk.
        let reopened = try PartitionLog(directory: dir.path, config: settings, preallocateBytes: 4096)
        #expect(reopened.highWatermark == end)
        #expect(fileSize(logs.last!) == activeBytes, "the zeros were cut")
        let all = try reopened.read(from: 0, maxRecords: 1000, maxBytes: 1 << 20)
        #expect(all.records.map(\.offset) == Array(0..<end))
        #expect(all.records.last?.value == Array(#"{"n":29}"#.utf8))
        let next = try await reopened.append([record("again", "{}")])
        #expect(next.baseOffset == end)
        #expect(fileSize(logs.last!) > reopened.sizeInBytes - sealedBytes)
        try reopened.close()
        #expect(fileSize(logs.last!) == reopened.sizeInBytes - sealedBytes, "closing trims the zeros")
        let again = try PartitionLog(directory: dir.path, config: settings)
        #expect(again.highWatermark == end + 1)
    }

    @Test func aFlippedBitInASealedSegmentIsReportedAsCorruptionNotCut() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        _ = try await populate(dir.path, count: 80)
        let logs = segmentFiles(dir.path, ".log")
        #expect(logs.count >= 3)
        let sealed = logs[1]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: sealed))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: sealed))
        let sizeBefore = fileSize(sealed)
        #expect {
            _ = try PartitionLog(directory: dir.path, config: settings)
        } throws: { error in
            guard case StorageError.corruption(let path, _, _) = error else { return false }
            return path == sealed
        }
        #expect(fileSize(sealed) == sizeBefore, "nothing was cut")
    }

    @Test func aFlippedBitInTheActiveSegmentBelowTheRecoveryPointIsCorruptionNotATornTail() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        _ = try await populate(dir.path, count: 10, checkpointAfter: 8)
        let active = segmentFiles(dir.path, ".log").last!
        var bytes = try Data(contentsOf: URL(fileURLWithPath: active))
        bytes[100] ^= 0x04
        try bytes.write(to: URL(fileURLWithPath: active))
        #expect(throws: StorageError.self) { _ = try PartitionLog(directory: dir.path, config: settings) }
        #expect(fileSize(active) == Int64(bytes.count))
    }

    @Test func aFlippedBitBelowTheRecoveryPointIsReportedWhenRead() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        _ = try await populate(dir.path, count: 40, checkpointAfter: 40)
        let first = segmentFiles(dir.path, ".log")[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: first))
        bytes[bytes.count - 5] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: first))
        let log = try PartitionLog(directory: dir.path, config: settings)
        #expect {
            _ = try log.read(from: 0, maxRecords: 1000, maxBytes: 1 << 20)
        } throws: { error in
            guard case StorageError.corruption = error else { return false }
            return true
        }
    }

    @Test func missingOrDamagedIndexesAreRebuilt() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        _ = try await populate(dir.path, count: 60, checkpointAfter: 60)
        let indexes = segmentFiles(dir.path, ".index")
        #expect(indexes.count >= 3)
        try FileManager.default.removeItem(atPath: indexes[0])
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: indexes[1]))
        try Data(repeating: 0xFF, count: 16).write(to: URL(fileURLWithPath: segmentFiles(dir.path, ".timeindex")[2]))
        let log = try PartitionLog(directory: dir.path, config: settings)
        #expect(log.highWatermark == 60)
        for offset in 0..<60 {
            #expect(try log.read(from: Int64(offset), maxRecords: 1, maxBytes: 1000).records.first?.offset == Int64(offset))
        }
        #expect(fileSize(indexes[0]) > 0)
        #expect(fileSize(indexes[1]) % 8 == 0)
    }

    @Test func leftoversOfInterruptedOperationsAreRemoved() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        _ = try await populate(dir.path, count: 5)
        for name in ["00000000000000000000.log.cleaned", "00000000000000000099.log.deleted", "checkpoint.json.tmp"] {
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir.path + "/" + name))
        }
        let log = try PartitionLog(directory: dir.path, config: settings)
        #expect(log.highWatermark == 5)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!names.contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".deleted") || $0.hasSuffix(".tmp") })
    }
}
