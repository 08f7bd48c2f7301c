import Foundation
import Testing

@testable import LogStorage

/// The log's files hold at most the budget's descriptors: past it the least recently used idle
/// file is closed and opened again when touched, its content whole; a file written since its last
/// sync is synced before it is closed; a file deleted while closed is not brought back empty.
@Suite("DescriptorBudget")
struct DescriptorBudgetTests {
    @Test func manyMoreFilesThanTheBudgetAreReadAndWrittenWhole() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let budget = DescriptorBudget(capacity: 8)
        let fileSystem = PosixFileSystem(descriptors: budget)
        let files = try (0..<100).map { try fileSystem.open(dir.path + "/file-\($0)") }
        #expect(budget.statistics.openNow <= 8)
        for round in 0..<3 {
            for (i, file) in files.enumerated() {
                try file.write(Array("\(round)-\(i);".utf8), at: Int64(round * 16))
                #expect(budget.statistics.openNow <= 8)
            }
        }
        for (i, file) in files.enumerated().reversed() {
            try file.sync()
            let text = String(decoding: try file.read(at: 0, count: 48), as: UTF8.self)
            #expect(text.hasPrefix("0-\(i);"))
            #expect(text.contains("2-\(i);"))
            #expect(try file.size() == 32 + Int64("2-\(i);".utf8.count))
        }
        let statistics = budget.statistics
        #expect(statistics.openNow <= 8)
        #expect(statistics.evictions > 100, "files were closed and opened again: \(statistics)")
    }

    @Test func aFileInUseIsNeverClosedUnderIt() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let budget = DescriptorBudget(capacity: 8)
        let fileSystem = PosixFileSystem(descriptors: budget)
        let files = try (0..<64).map { try fileSystem.open(dir.path + "/file-\($0)") }
        for (i, file) in files.enumerated() { try file.write(Array(repeating: UInt8(i), count: 4096), at: 0) }
        // Threads touch every file at once: each pread must see its own file's bytes.
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for round in 0..<200 {
                let i = (round * 7 + thread * 13) % files.count
                let bytes = try! files[i].read(at: 0, count: 4096)
                precondition(bytes == Array(repeating: UInt8(i), count: 4096), "file \(i) read another file's bytes")
            }
        }
        #expect(budget.statistics.openNow <= 8 + 8, "at most the budget, plus one per thread in a call")
    }

    @Test func aFileDeletedWhileClosedIsNotRecreatedEmpty() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let budget = DescriptorBudget(capacity: 8)
        let fileSystem = PosixFileSystem(descriptors: budget)
        let doomed = try fileSystem.open(dir.path + "/doomed")
        try doomed.write(Array("data".utf8), at: 0)
        try doomed.sync()
        let others = try (0..<20).map { try fileSystem.open(dir.path + "/other-\($0)") }
        for other in others { _ = try other.size() }
        try fileSystem.remove(dir.path + "/doomed")
        #expect(throws: StorageError.self) { _ = try doomed.read(at: 0, count: 4) }
        #expect(!fileSystem.exists(dir.path + "/doomed"))
    }

    @Test func partitionLogsPastTheBudgetAppendReadAndReopen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let budget = DescriptorBudget(capacity: 16)
        let fileSystem = PosixFileSystem(descriptors: budget)
        var config = LogConfig()
        config.segmentBytes = 1024
        // 40 partitions of 3 segments (3 files each) = 360 files through 16 descriptors.
        var logs = try (0..<40).map { try PartitionLog(directory: dir.path + "/\($0)", config: config, fileSystem: fileSystem) }
        for round in 0..<30 {
            for (i, log) in logs.enumerated() {
                _ = try await log.append([record("k", "p\(i)-r\(round)-" + String(repeating: "x", count: 64))])
            }
        }
        #expect(budget.statistics.openNow <= 16)
        for log in logs { try log.close() }
        logs = try (0..<40).map { try PartitionLog(directory: dir.path + "/\($0)", config: config, fileSystem: fileSystem) }
        for (i, log) in logs.enumerated() {
            #expect(log.segmentCount > 2)
            let read = try log.read(from: 0, maxRecords: 100, maxBytes: 1 << 20)
            #expect(read.records.count == 30)
            #expect(read.records.last?.valueText?.hasPrefix("p\(i)-r29-") == true)
        }
        #expect(budget.statistics.openNow <= 16)
    }
}
