import CommitScheduling
import Logging
import Synchronization
import WallTime
import Watermarks

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The durable log of one partition: segments on disk, appends acknowledged only once synced,
/// reads bounded by the high watermark (the end of what is synced).
///
/// Thread-safe. Appends are serialised by one lock that covers only the write into the page
/// cache; durability is group-committed: while one fdatasync runs, every append that arrives
/// queues behind it, and the next fdatasync covers them all.
public final class PartitionLog: Sendable {
    public let directory: String
    public let config: LogConfig
    private let fileSystem: any FileSystem
    private let clock: any WallClock
    private let logger: Logger
    private let state: Mutex<State>
    private let watermark: WatermarkWaiters
    /// How far ahead of its appends the active segment is zero-filled (see `LogSegment.append`).
    let preallocateBytes: Int
    /// Where the group commit's fdatasync runs.
    private let syncScheduler: any CommitScheduler

    /// 1 MiB: one extension (and one slower sync) per MiB appended.
    public static let defaultPreallocateBytes = 1 << 20

    private struct State {
        var segments: [LogSegment]
        var producers: ProducerStateTable
        /// Offset after the last written batch (the log end offset).
        var writtenEnd: Int64
        /// Offset after the last synced batch: the high watermark readers see.
        var durableEnd: Int64
        /// When the active segment took its first append, by the broker's clock.
        var activeSince: Int64?
        var syncing = false
        var syncWaiters: [(target: Int64, continuation: CheckedContinuation<Void, any Error>)] = []
        var offline: StorageError?
        var closed = false
        /// The recovery point of the last checkpoint written, so an idle log writes none.
        var checkpointed: Int64?
    }

    /// Opens (and if needed recovers) the log in `directory`, creating it if missing.
    public init(
        directory: String, config: LogConfig, fileSystem: any FileSystem = PosixFileSystem(),
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "log"),
        preallocateBytes: Int = PartitionLog.defaultPreallocateBytes,
        syncScheduler: any CommitScheduler = BackgroundCommitScheduler()
    ) throws {
        self.directory = directory
        self.syncScheduler = syncScheduler
        self.config = config
        self.preallocateBytes = max(0, preallocateBytes)
        self.fileSystem = fileSystem
        self.clock = clock
        var logger = logger
        logger[metadataKey: "log.directory"] = "\(directory)"
        self.logger = logger
        let loaded = try LogLoader(
            directory: directory, config: config, fileSystem: fileSystem, logger: logger,
            preallocateBytes: self.preallocateBytes
        ).load()
        let activeSince: Int64? = loaded.segments.last!.isEmpty ? nil : clock.nowMilliseconds()
        state = Mutex(
            State(
                segments: loaded.segments, producers: loaded.producers, writtenEnd: loaded.nextOffset,
                durableEnd: loaded.nextOffset, activeSince: activeSince))
        watermark = WatermarkWaiters(highWatermark: loaded.nextOffset)
    }

    // MARK: Offsets and sizes

    /// Offset after the last record readers may see.
    public var highWatermark: Int64 { state.withLock { $0.durableEnd } }
    /// Offset after the last record written, synced or not (Kafka's log end offset).
    public var logEndOffset: Int64 { state.withLock { $0.writtenEnd } }
    /// The first offset still in the log; retention moves it forward.
    public var logStartOffset: Int64 { state.withLock { $0.segments[0].baseOffset } }
    public var sizeInBytes: Int64 { state.withLock { $0.segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    /// Why the log takes no more writes, if it is offline.
    public var offlineReason: String? { state.withLock { $0.offline?.description } }

    // MARK: Append

    public struct AppendResult: Hashable, Sendable {
        public var baseOffset: Int64
        public var lastOffset: Int64
        /// True when an idempotent producer sent this batch before: nothing was appended and the
        /// offsets are the ones it got then.
        public var duplicate: Bool
    }

    /// Appends records as one batch and returns once they are durable.
    ///
    /// With a producer stamp, a batch already in the log is answered with its first offsets, and a
    /// sequence that is not the next one throws `StorageError.outOfOrderSequence`.
    public func append(_ records: [Record], producer: ProducerStamp? = nil) async throws -> AppendResult {
        var batch = RecordBatch(records: records, producer: producer).encoded()
        guard batch.bytes.count <= config.maxBatchBytes else {
            throw StorageError.tooLarge("a batch of \(batch.bytes.count) bytes is over the limit of \(config.maxBatchBytes)")
        }
        let now = clock.nowMilliseconds()
        let result = try state.withLock { state throws -> AppendResult in
            if state.closed { throw StorageError.offline(path: directory, cause: "the log is closed") }
            if let offline = state.offline { throw offline }
            if let producer {
                switch state.producers.check(producer, recordCount: records.count) {
                case .append: break
                case .duplicate(let seen):
                    return AppendResult(baseOffset: seen.baseOffset, lastOffset: seen.lastOffset, duplicate: true)
                case .outOfOrder(let expected):
                    throw StorageError.outOfOrderSequence(
                        producerId: producer.producerId, expected: expected, received: producer.baseSequence)
                }
            }
            try rollIfDue(&state, incomingBytes: batch.bytes.count, now: now)
            let baseOffset = state.writtenEnd
            batch.setBaseOffset(baseOffset)
            let header = try BatchHeader(batch.bytes[...])
            do {
                try state.segments.last!.append(batch.bytes, header: header)
            } catch {
                // A half-done write leaves the file in an unknown state: stop taking writes.
                throw takeOffline(&state, after: error)
            }
            if state.activeSince == nil { state.activeSince = now }
            state.writtenEnd = header.nextOffset
            if let producer {
                state.producers.record(
                    producer, recordCount: records.count, baseOffset: baseOffset, lastOffset: header.lastOffset)
            }
            return AppendResult(baseOffset: baseOffset, lastOffset: header.lastOffset, duplicate: false)
        }
        try await waitUntilDurable(result.lastOffset + 1)
        return result
    }

    /// Throws `outOfOrderSequence` if a batch with this stamp would be refused now, so a request
    /// spanning partitions can be refused before any of them is written. `append` checks again.
    public func checkSequence(_ producer: ProducerStamp, recordCount: Int) throws {
        try state.withLock { state in
            if case .outOfOrder(let expected) = state.producers.check(producer, recordCount: recordCount) {
                throw StorageError.outOfOrderSequence(
                    producerId: producer.producerId, expected: expected, received: producer.baseSequence)
            }
        }
    }

    private func rollIfDue(_ state: inout State, incomingBytes: Int, now: Int64) throws {
        let active = state.segments.last!
        guard !active.isEmpty else { return }
        let full = active.size + Int64(incomingBytes) > Int64(config.segmentBytes)
        let old = now - (state.activeSince ?? now) >= config.segmentMs
        // Index entries hold offsets relative to the base as 32 bits.
        let offsetsExhausted = state.writtenEnd - active.baseOffset > Int64(UInt32.max / 2)
        guard full || old || offsetsExhausted else { return }
        do {
            try roll(&state)
        } catch {
            // Sealing fsyncs the old segment. After a failed fsync the kernel may have dropped the
            // dirty pages and a second fsync would succeed over the loss (PostgreSQL's "fsyncgate"),
            // so batches waiting on it must never be acknowledged: stop taking writes.
            throw takeOffline(&state, after: error)
        }
    }

    /// Marks the log offline after a failed write or fsync and returns the error to throw.
    private func takeOffline(_ state: inout State, after error: any Error) -> StorageError {
        let failure = StorageError.offline(path: directory, cause: "\(error)")
        if state.offline == nil {
            state.offline = failure
            logger.critical("a write or fsync failed; the partition takes no more writes", metadata: ["error": "\(error)"])
        }
        return failure
    }

    private func roll(_ state: inout State) throws {
        try state.segments.last!.seal()
        let segment = try LogSegment(
            directory: directory, baseOffset: state.writtenEnd, indexIntervalBytes: config.indexIntervalBytes,
            preallocateBytes: preallocateBytes, fileSystem: fileSystem)
        try fileSystem.syncDirectory(directory)
        state.segments.append(segment)
        state.activeSince = nil
        logger.debug("rolled a new segment", metadata: ["log.base_offset": "\(segment.baseOffset)"])
    }

    /// Seals the active segment if it has taken appends for longer than `segmentMs`, so an idle
    /// partition's old records become eligible for retention.
    public func rollIfExpired() throws {
        let now = clock.nowMilliseconds()
        try state.withLock { state in
            guard !state.closed, state.offline == nil else { return }
            try rollIfDue(&state, incomingBytes: 0, now: now)
        }
    }

    // MARK: Group commit

    private func waitUntilDurable(_ target: Int64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            enum Next {
                case done
                case failed(StorageError)
                case wait, startSync
            }
            let next = state.withLock { state -> Next in
                if let offline = state.offline { return .failed(offline) }
                if state.durableEnd >= target { return .done }
                state.syncWaiters.append((target, continuation))
                if state.syncing { return .wait }
                state.syncing = true
                return .startSync
            }
            switch next {
            case .done: continuation.resume()
            case .failed(let error): continuation.resume(throwing: error)
            case .wait: break
            case .startSync: syncScheduler.schedule(covering: 1) { self.syncRound() }
            }
        }
    }

    /// Runs where the scheduler put it, on a thread that may block: fdatasync the active
    /// segment, release every append it covered, and schedule another round if appends arrived
    /// meanwhile. Scheduling, rather than looping, lets a scheduler on an event loop send the
    /// replies this round released before the loop blocks in the next one.
    private func syncRound() {
        let (target, file) = state.withLock { ($0.writtenEnd, $0.segments.last!.file) }
        do {
            try file.sync()
        } catch {
            _ = failWaitersIfOffline(after: error)
            return
        }
        // A write or a roll's fsync may have failed while this one ran: then what this fsync
        // covered is unknown.
        if failWaitersIfOffline() { return }
        let (ready, waiting) = state.withLock { state in
            state.durableEnd = max(state.durableEnd, target)
            let durable = state.durableEnd
            let ready = state.syncWaiters.filter { $0.target <= durable }
            state.syncWaiters.removeAll { $0.target <= durable }
            if state.syncWaiters.isEmpty { state.syncing = false }
            return (ready, state.syncWaiters.count)
        }
        watermark.advance(to: target)
        for waiter in ready { waiter.continuation.resume() }
        if waiting > 0 { syncScheduler.schedule(covering: waiting) { self.syncRound() } }
    }

    /// Once the log is offline (taken offline here when `error` is given), fails every append
    /// waiting for an fsync and stops the sync loop. Returns whether it did.
    private func failWaitersIfOffline(after error: (any Error)? = nil) -> Bool {
        typealias Waiter = (target: Int64, continuation: CheckedContinuation<Void, any Error>)
        let failed = state.withLock { state -> (StorageError, [Waiter])? in
            if let error { _ = takeOffline(&state, after: error) }
            guard let failure = state.offline else { return nil }
            state.syncing = false
            defer { state.syncWaiters = [] }
            return (failure, state.syncWaiters)
        }
        guard let (failure, waiters) = failed else { return false }
        for waiter in waiters { waiter.continuation.resume(throwing: failure) }
        return true
    }

    // MARK: Read

    public struct ReadResult: Hashable, Sendable {
        public var records: [Record]
        /// The records' size as stored (the sum of their `encodedSize`), what `maxBytes` bounds.
        public var bytes: Int
        public var highWatermark: Int64
        public var logStartOffset: Int64
        /// Where the next read should start: after the last record returned, or past a gap that
        /// compaction left.
        public var nextOffset: Int64
    }

    /// Records from `offset` on, below the high watermark. Returns at least one record when
    /// there is one, even over `maxBytes`, so a reader always makes progress. Every batch read is
    /// checked by CRC; a mismatch throws `StorageError.corruption`, never bad data.
    public func read(from offset: Int64, maxRecords: Int, maxBytes: Int) throws -> ReadResult {
        let (plan, highWatermark, logStart) = try state.withLock { state in
            let hw = state.durableEnd
            let start = state.segments[0].baseOffset
            guard offset >= start, offset <= hw else {
                throw StorageError.offsetOutOfRange(requested: offset, logStartOffset: start, highWatermark: hw)
            }
            let first = state.segments.lastIndex(atOrBelow: { $0.baseOffset <= offset }) ?? 0
            let plan = state.segments[first...].enumerated().map { i, segment in
                (file: segment.file, from: i == 0 ? segment.position(for: offset) : 0, to: segment.size)
            }
            return (offset == hw ? [] : plan, hw, start)
        }
        var records: [Record] = []
        var bytes = 0
        let chunk = min(max(maxBytes + RecordBatch.headerSize, 64 << 10), 4 << 20)
        scan: for part in plan {
            var walker = BatchWalker(file: part.file, from: part.from, to: part.to, chunkSize: chunk)
            while let found = try next(&walker) {
                if found.header.baseOffset >= highWatermark { break scan }
                if found.header.lastOffset < offset { continue }
                let batch = try decode(found, file: part.file).records
                // The run of the batch's records this read takes, appended at once: a record copied
                // one at a time went through its fields' generic copies, about 500 instructions.
                var first: Int?
                var end = batch.startIndex
                var full = false
                for index in batch.indices {
                    let recordOffset = batch[index].offset
                    guard recordOffset >= offset else { continue }
                    guard recordOffset < highWatermark else { break }
                    let size = batch[index].encodedSize
                    let taken = records.count + (first.map { end - $0 } ?? 0)
                    if taken > 0 && (taken >= maxRecords || bytes + size > maxBytes) {
                        full = true
                        break
                    }
                    if first == nil { first = index }
                    end = index + 1
                    bytes += size
                }
                if let first {
                    if records.isEmpty && first == batch.startIndex && end == batch.endIndex {
                        records = batch
                    } else {
                        records.append(contentsOf: batch[first..<end])
                    }
                }
                if full { break scan }
            }
        }
        let nextOffset = records.last.map { $0.offset + 1 } ?? highWatermark
        return ReadResult(records: records, bytes: bytes, highWatermark: highWatermark, logStartOffset: logStart, nextOffset: nextOffset)
    }

    /// The next batch, checked by CRC. Every batch a read walks over is checked, not only those
    /// it decodes: its header's offsets and timestamps decide what is skipped and where a read
    /// stops, and one flipped bit there must be reported, not serve a silent gap.
    private func next(_ walker: inout BatchWalker) throws -> BatchWalker.Found? {
        do {
            return try walker.next(verify: true)
        } catch let invalid as BatchWalker.Invalid {
            throw StorageError.corruption(path: walker.file.path, position: invalid.position, reason: invalid.reason.description)
        }
    }

    private func decode(_ found: BatchWalker.Found, file: any StorageFile) throws -> RecordBatch {
        do {
            return try RecordBatch.decode(found.bytes, checksumVerified: true)
        } catch {
            throw StorageError.corruption(path: file.path, position: found.position, reason: error.description)
        }
    }

    /// Waits until the record at `offset` is readable (the high watermark is above it) or `timeout` runs out; true if it is.
    public func waitForRecord(at offset: Int64, timeout: Duration) async -> Bool {
        if highWatermark > offset { return true }
        return await watermark.wait(untilAbove: offset, timeout: timeout)
    }

    /// Waits, without a time limit, until the record at `offset` is readable or the task is cancelled.
    public func waitForRecord(at offset: Int64) async {
        await watermark.wait(untilAbove: offset)
    }

    /// The first offset whose record has a timestamp at or after `timestamp`, with that
    /// timestamp; nil when every record is older.
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        let (plan, highWatermark) = state.withLock { state in
            let candidates = state.segments.filter { $0.maxTimestamp >= timestamp }
            return (
                candidates.enumerated().map { i, segment in
                    (file: segment.file, from: i == 0 ? segment.position(forTimestamp: timestamp) : 0, to: segment.size)
                }, state.durableEnd
            )
        }
        for part in plan {
            var walker = BatchWalker(file: part.file, from: part.from, to: part.to)
            while let found = try next(&walker) {
                if found.header.baseOffset >= highWatermark { return nil }
                guard found.header.maxTimestamp >= timestamp else { continue }
                let batch = try decode(found, file: part.file)
                if let record = batch.records.first(where: { $0.timestamp >= timestamp && $0.offset < highWatermark }) {
                    return (record.offset, record.timestamp)
                }
            }
        }
        return nil
    }

    // MARK: Retention

    public struct RetentionResult: Hashable, Sendable {
        public var deletedSegments: Int
        public var deletedBytes: Int64
    }

    /// Deletes whole sealed segments past the retention time or beyond the retention size (never
    /// the active one). The log start offset moves to the first segment left.
    @discardableResult
    public func applyRetention() throws -> RetentionResult {
        guard config.cleanupPolicy == .delete else { return RetentionResult(deletedSegments: 0, deletedBytes: 0) }
        let now = clock.nowMilliseconds()
        let doomed = state.withLock { state -> [LogSegment] in
            guard !state.closed else { return [] }
            var doomed: [LogSegment] = []
            var total = state.segments.reduce(0) { $0 + $1.size }
            for segment in state.segments.dropLast() {
                let expired = config.retentionMs >= 0 && segment.maxTimestamp < now - config.retentionMs
                let oversize = config.retentionBytes >= 0 && total - segment.size >= config.retentionBytes
                guard expired || oversize else { break }
                doomed.append(segment)
                total -= segment.size
            }
            state.segments.removeFirst(doomed.count)
            return doomed
        }
        for segment in doomed { try deleteFiles(of: segment.baseOffset) }
        if !doomed.isEmpty {
            try fileSystem.syncDirectory(directory)
            logger.info(
                "retention deleted segments",
                metadata: ["segments": "\(doomed.count)", "log.start_offset": "\(logStartOffset)"])
        }
        return RetentionResult(deletedSegments: doomed.count, deletedBytes: doomed.reduce(0) { $0 + $1.size })
    }

    /// Renames a segment's files to `.deleted` (so a crash half-way leaves files the loader
    /// removes), then unlinks them. Readers holding the open file finish their read.
    private func deleteFiles(of baseOffset: Int64) throws {
        let paths = LogSegment.paths(directory: directory, baseOffset: baseOffset)
        for path in [paths.log, paths.index, paths.timeIndex] {
            try fileSystem.rename(path, to: path + ".deleted")
            try fileSystem.remove(path + ".deleted")
        }
    }

    // MARK: Compaction

    public struct CompactionResult: Hashable, Sendable {
        public var segmentsRewritten: Int
        public var recordsRemoved: Int
    }

    /// On a compacted log, rewrites sealed segments keeping only the latest record of each key
    /// and dropping tombstones older than `deleteRetentionMs`. Offsets never change: a kept
    /// record keeps its offset, and batches keep their offset ranges.
    @discardableResult
    public func compact() throws -> CompactionResult {
        guard config.cleanupPolicy == .compact else { return CompactionResult(segmentsRewritten: 0, recordsRemoved: 0) }
        let now = clock.nowMilliseconds()
        let (segments, highWatermark) = state.withLock { state in
            (state.segments.map { (baseOffset: $0.baseOffset, file: $0.file, size: $0.size) }, state.durableEnd)
        }
        guard segments.count > 1 else { return CompactionResult(segmentsRewritten: 0, recordsRemoved: 0) }
        var latest: [[UInt8]: Int64] = [:]
        for segment in segments {
            var walker = BatchWalker(file: segment.file, from: 0, to: segment.size)
            while let found = try next(&walker), found.header.baseOffset < highWatermark {
                for record in try decode(found, file: segment.file).records {
                    if let key = record.key { latest[key] = record.offset }
                }
            }
        }
        var result = CompactionResult(segmentsRewritten: 0, recordsRemoved: 0)
        for segment in segments.dropLast() {
            var rewritten: [UInt8] = []
            var removed = 0
            var walker = BatchWalker(file: segment.file, from: 0, to: segment.size)
            while let found = try next(&walker) {
                let batch = try decode(found, file: segment.file)
                let kept = batch.records.filter { record in
                    guard let key = record.key, latest[key] == record.offset else { return false }
                    return record.value != nil || record.timestamp >= now - config.deleteRetentionMs
                }
                removed += batch.records.count - kept.count
                if kept.count == batch.records.count {
                    rewritten.append(contentsOf: found.bytes)
                } else if !kept.isEmpty {
                    rewritten.append(
                        contentsOf: RecordBatch(
                            baseOffset: batch.baseOffset, lastOffsetDelta: batch.lastOffsetDelta, records: kept,
                            producer: batch.producer
                        ).encoded().bytes)
                }
            }
            guard removed > 0 else { continue }
            try replaceSegment(baseOffset: segment.baseOffset, with: rewritten)
            result.segmentsRewritten += 1
            result.recordsRemoved += removed
        }
        if result.segmentsRewritten > 0 {
            logger.info(
                "compacted", metadata: ["segments": "\(result.segmentsRewritten)", "records.removed": "\(result.recordsRemoved)"])
        }
        return result
    }

    /// Swaps a sealed segment for a cleaned copy. The copy is written and synced as `.cleaned`;
    /// the indexes are removed before the rename, so a crash at any point leaves either the old
    /// or the new log, and indexes that are rebuilt if missing.
    private func replaceSegment(baseOffset: Int64, with bytes: [UInt8]) throws {
        let paths = LogSegment.paths(directory: directory, baseOffset: baseOffset)
        let cleaned = try fileSystem.open(paths.log + ".cleaned")
        try cleaned.truncate(to: 0)
        try cleaned.write(bytes, at: 0)
        try cleaned.sync()
        try state.withLock { state in
            guard let i = state.segments.firstIndex(where: { $0.baseOffset == baseOffset }) else { return }
            try fileSystem.remove(paths.index)
            try fileSystem.remove(paths.timeIndex)
            try fileSystem.rename(paths.log + ".cleaned", to: paths.log)
            try fileSystem.syncDirectory(directory)
            let segment = try LogSegment(
                directory: directory, baseOffset: baseOffset, indexIntervalBytes: config.indexIntervalBytes,
                fileSystem: fileSystem)
            var walker = BatchWalker(file: segment.file, from: 0, to: segment.size)
            while let found = try next(&walker) { try segment.index(found.header, at: found.position) }
            try segment.seal()
            state.segments[i] = segment
        }
    }

    // MARK: Checkpoint and close

    /// Writes the recovery point (the high watermark) and the producer table as of it, so the
    /// next start checks only what came after.
    public func checkpoint() throws {
        let checkpoint = state.withLock { state -> PartitionCheckpoint? in
            guard state.offline == nil, state.checkpointed != state.durableEnd else { return nil }
            var producers = state.producers
            producers.forget(after: state.durableEnd)
            return PartitionCheckpoint(recoveryPoint: state.durableEnd, producers: producers)
        }
        guard let checkpoint else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try fileSystem.writeAtomically(directory + "/" + PartitionCheckpoint.fileName, Array(try encoder.encode(checkpoint)))
        state.withLock { $0.checkpointed = checkpoint.recoveryPoint }
    }

    /// Trims the active segment's zeros, syncs, checkpoints and refuses further appends.
    public func close() throws {
        let file = try state.withLock { state -> (any StorageFile)? in
            guard !state.closed else { return nil }
            state.closed = true
            if state.offline == nil { try state.segments.last!.trimPreallocated() }
            return state.segments.last!.file
        }
        guard let file else { return }
        try file.sync()
        try checkpoint()
    }
}

/// Lives in the log's lock.
extension LogSegment: @unchecked Sendable {}
