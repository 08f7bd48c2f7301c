import Foundation
import LogStorage
import Synchronization

/// A fresh directory under the system temp dir, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "/logstorage-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

func record(_ key: String?, _ value: String?, timestamp: Int64 = 1_700_000_000_000, headers: [RecordHeader] = []) -> Record {
    Record(timestamp: timestamp, key: key.map { Array($0.utf8) }, value: value.map { Array($0.utf8) }, headers: headers)
}

extension Record {
    var valueText: String? { value.map { String(decoding: $0, as: UTF8.self) } }
    var keyText: String? { key.map { String(decoding: $0, as: UTF8.self) } }
}

/// The real file system, counting syncs and able to fail them on demand.
final class InstrumentedFileSystem: FileSystem {
    let base = PosixFileSystem()
    let syncs = Atomic<Int>(0)
    let failSyncs = Atomic<Bool>(false)
    /// Makes each fsync take at least this long, as a slow disk would (0: as fast as the disk is).
    let syncDelayMicroseconds = Atomic<Int>(0)

    func open(_ path: String) throws -> any StorageFile { InstrumentedFile(try base.open(path), owner: self) }
    func exists(_ path: String) -> Bool { base.exists(path) }
    func list(_ directory: String) throws -> [String] { try base.list(directory) }
    func createDirectory(_ path: String) throws { try base.createDirectory(path) }
    func rename(_ from: String, to: String) throws { try base.rename(from, to: to) }
    func remove(_ path: String) throws { try base.remove(path) }
    func removeTree(_ path: String) throws { try base.removeTree(path) }
    func syncDirectory(_ path: String) throws { try base.syncDirectory(path) }
}

final class InstrumentedFile: StorageFile {
    let inner: any StorageFile
    let owner: InstrumentedFileSystem

    init(_ inner: any StorageFile, owner: InstrumentedFileSystem) {
        self.inner = inner
        self.owner = owner
    }

    var path: String { inner.path }
    func size() throws -> Int64 { try inner.size() }
    func read(at offset: Int64, count: Int) throws -> [UInt8] { try inner.read(at: offset, count: count) }
    func write(_ bytes: [UInt8], at offset: Int64) throws { try inner.write(bytes, at: offset) }
    func truncate(to size: Int64) throws { try inner.truncate(to: size) }

    func sync() throws {
        if owner.failSyncs.load(ordering: .relaxed) { throw StorageError.io(operation: "fdatasync", path: path, errno: EIO) }
        owner.syncs.wrappingAdd(1, ordering: .relaxed)
        let delay = owner.syncDelayMicroseconds.load(ordering: .relaxed)
        if delay > 0 { usleep(UInt32(delay)) }
        try inner.sync()
    }
}

func fileSize(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? -1
}

func segmentFiles(_ directory: String, _ suffix: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
        .map { directory + "/" + $0 }
}

/// Waits until `condition` holds, checking every millisecond, for at most 10 s.
func poll(_ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw CancellationError() }
        try await Task.sleep(for: .milliseconds(1))
    }
}
