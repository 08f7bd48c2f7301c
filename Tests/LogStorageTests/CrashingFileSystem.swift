import Foundation
import LogStorage
import Synchronization

/// A file system that behaves like a machine whose power can be cut: every write goes to the
/// real file (the "page cache", which reads see), and is remembered with the bytes it replaced
/// until the file is fsynced. `crash(_:)` then does what a power cut may do to each file: keep
/// its synced content, keep a prefix of the writes since, and tear the last kept write at a
/// chosen byte. After a crash every operation through this file system fails, so the log that
/// used it goes offline, as the dead process would.
///
/// It can also fail the n-th write (after writing part of it) or the n-th fsync with a chosen
/// errno, as a full or failing disk does.
///
/// Directory entries (create, rename, remove) are taken as durable when made: the log orders
/// them behind fsyncs of the files involved and syncs the directory itself, and modelling lost
/// directory entries is left to a later test.
final class CrashingFileSystem: FileSystem, @unchecked Sendable {
    /// A write or truncate not yet covered by an fsync, with what it replaced so it can be undone.
    struct PendingChange {
        var offset: Int64
        /// Length of the new bytes (for a truncate: 0).
        var length: Int
        /// The bytes the change overwrote or cut off, from `offset` on.
        var replaced: [UInt8]
        /// The file's size before the change.
        var sizeBefore: Int64
    }

    /// One file, shared by every handle opened on it; `path` follows renames.
    final class Tracked {
        var path: String
        var pending: [PendingChange] = []
        init(path: String) { self.path = path }
    }

    struct Failure {
        /// 1-based count of the operation that fails.
        var at: Int
        var errno: Int32
        /// For a write: how many of its bytes reach the file before it fails.
        var partialBytes: Int = 0
    }

    struct State {
        var files: [String: Tracked] = [:]
        var crashed = false
        var writes = 0
        var syncs = 0
        var failWrite: Failure?
        var failSync: Failure?
        /// Whether the chosen write or fsync has failed yet.
        var injected = false
    }

    let base = PosixFileSystem()
    private let lock = NSLock()
    private var state = State()

    init(failWrite: Failure? = nil, failSync: Failure? = nil) {
        state.failWrite = failWrite
        state.failSync = failSync
    }

    var injectedFailure: Bool { lock.withLock { state.injected } }

    /// What a crash did, for messages when a check fails.
    struct CrashReport: CustomStringConvertible {
        var files: [(path: String, pending: Int, kept: Int, tornAt: Int?)] = []
        var description: String {
            files.map { "\($0.path.split(separator: "/").last!): kept \($0.kept)/\($0.pending)\($0.tornAt.map { ", torn at byte \($0)" } ?? "")" }
                .joined(separator: "; ")
        }
    }

    /// Cuts the power: each file keeps its synced content plus a random prefix of its unsynced
    /// changes, the last of them torn at a random byte. Returns what was kept.
    @discardableResult
    func crash(using random: inout some RandomNumberGenerator) throws -> CrashReport {
        try lock.withLock {
            state.crashed = true
            var report = CrashReport()
            for tracked in state.files.values where !tracked.pending.isEmpty {
                let file = try base.open(tracked.path)
                let changes = tracked.pending
                let kept = Int.random(in: 0...changes.count, using: &random)
                // Undo from the newest change back: the file then looks as it did just after the
                // last kept change, and the one after it is torn.
                var tornAt: Int?
                for index in stride(from: changes.count - 1, through: kept, by: -1) {
                    let change = changes[index]
                    let keepBytes = index == kept && change.length > 0 ? Int.random(in: 0..<change.length, using: &random) : 0
                    if index == kept, keepBytes > 0 { tornAt = keepBytes }
                    try undo(change, keepingFirst: keepBytes, in: file)
                }
                tracked.pending = []
                report.files.append((tracked.path, changes.count, kept, tornAt))
            }
            return report
        }
    }

    private func undo(_ change: PendingChange, keepingFirst keep: Int, in file: any StorageFile) throws {
        if keep < change.replaced.count {
            try file.write(Array(change.replaced[keep...]), at: change.offset + Int64(keep))
        }
        // A truncate (length 0) is undone whole; a write keeps its first `keep` bytes.
        let sizeAfterUndo = change.length == 0 ? change.sizeBefore : max(change.sizeBefore, change.offset + Int64(keep))
        if try file.size() > sizeAfterUndo { try file.truncate(to: sizeAfterUndo) }
    }

    fileprivate func withLiveState<T>(_ body: (inout State) throws -> T) throws -> T {
        try lock.withLock {
            if state.crashed { throw StorageError.io(operation: "after the crash", path: "", errno: EIO) }
            return try body(&state)
        }
    }

    func open(_ path: String) throws -> any StorageFile {
        try withLiveState { state in
            let tracked = state.files[path] ?? Tracked(path: path)
            state.files[path] = tracked
            return CrashingFile(try base.open(path), tracked: tracked, owner: self)
        }
    }

    func exists(_ path: String) -> Bool { base.exists(path) }
    func list(_ directory: String) throws -> [String] { try withLiveState { _ in try base.list(directory) } }
    func createDirectory(_ path: String) throws { try withLiveState { _ in try base.createDirectory(path) } }
    func syncDirectory(_ path: String) throws { try withLiveState { _ in } }
    func removeTree(_ path: String) throws {
        try withLiveState { state in
            try base.removeTree(path)
            state.files = state.files.filter { !$0.key.hasPrefix(path + "/") }
        }
    }

    func rename(_ from: String, to: String) throws {
        try withLiveState { state in
            try base.rename(from, to: to)
            state.files[to] = state.files.removeValue(forKey: from)
            state.files[to]?.path = to
        }
    }

    func remove(_ path: String) throws {
        try withLiveState { state in
            try base.remove(path)
            state.files[path] = nil
        }
    }
}

final class CrashingFile: StorageFile, @unchecked Sendable {
    let inner: any StorageFile
    let tracked: CrashingFileSystem.Tracked
    let owner: CrashingFileSystem

    init(_ inner: any StorageFile, tracked: CrashingFileSystem.Tracked, owner: CrashingFileSystem) {
        self.inner = inner
        self.tracked = tracked
        self.owner = owner
    }

    var path: String { inner.path }
    func size() throws -> Int64 { try inner.size() }
    func read(at offset: Int64, count: Int) throws -> [UInt8] { try inner.read(at: offset, count: count) }

    func write(_ bytes: [UInt8], at offset: Int64) throws {
        try owner.withLiveState { state in
            state.writes += 1
            let sizeBefore = try inner.size()
            let replacedEnd = min(sizeBefore, offset + Int64(bytes.count))
            let replaced = replacedEnd > offset ? try inner.read(at: offset, count: Int(replacedEnd - offset)) : []
            tracked.pending.append(.init(offset: offset, length: bytes.count, replaced: replaced, sizeBefore: sizeBefore))
            if let failure = state.failWrite, failure.at == state.writes {
                state.injected = true
                try inner.write(Array(bytes.prefix(failure.partialBytes)), at: offset)
                throw StorageError.io(operation: "pwrite", path: path, errno: failure.errno)
            }
            try inner.write(bytes, at: offset)
        }
    }

    func truncate(to size: Int64) throws {
        try owner.withLiveState { _ in
            let sizeBefore = try inner.size()
            let cut = sizeBefore > size ? try inner.read(at: size, count: Int(sizeBefore - size)) : []
            tracked.pending.append(.init(offset: size, length: 0, replaced: cut, sizeBefore: sizeBefore))
            try inner.truncate(to: size)
        }
    }

    /// Marks every change so far durable. The real fdatasync is skipped: what is durable is what
    /// this model says, and the tests run hundreds of crashes.
    func sync() throws {
        try owner.withLiveState { state in
            state.syncs += 1
            if let failure = state.failSync, failure.at == state.syncs {
                state.injected = true
                throw StorageError.io(operation: "fdatasync", path: path, errno: failure.errno)
            }
            tracked.pending = []
        }
    }
}

/// SplitMix64: a small seeded generator, so a failing seed replays the same crash.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
