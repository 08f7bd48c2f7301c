import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a partition writes down from time to time so that starting again is quick: every offset
/// below `recoveryPoint` was synced and checked, and the producer table as of that offset.
struct PartitionCheckpoint: Codable, Equatable {
    var recoveryPoint: Int64
    var producers: ProducerStateTable

    static let fileName = "checkpoint.json"
}

/// Opens a partition directory after a clean stop or a crash (Kafka's `LogLoader`).
///
/// - Leftovers of interrupted operations go: `.deleted`, `.cleaned` and `.tmp` files.
/// - Sealed segments wholly below the recovery point are trusted; their indexes are loaded if
///   they fit the log, rebuilt otherwise.
/// - Segments from the recovery point on are read batch by batch and checked by CRC. In the last
///   segment the first bad batch at or after the recovery point is a torn tail: the file is cut
///   there and the cut logged with its byte count. A bad batch anywhere else was synced and
///   checked once, so it is corruption and loading fails; nothing is cut silently.
/// - The producer table is the checkpoint's, plus every batch replayed from the recovery point.
struct LogLoader {
    struct Loaded {
        var segments: [LogSegment]
        var producers: ProducerStateTable
        var nextOffset: Int64
    }

    let directory: String
    let config: LogConfig
    let fileSystem: any FileSystem
    let logger: Logger
    /// Passed to the active segment, which extends itself with zeros ahead of its appends.
    var preallocateBytes = 0

    func load() throws -> Loaded {
        try fileSystem.createDirectory(directory)
        var bases: [Int64] = []
        for name in try fileSystem.list(directory) {
            if name.hasSuffix(".deleted") || name.hasSuffix(".cleaned") || name.hasSuffix(".tmp") {
                logger.info("removing leftover file", metadata: ["file": "\(name)"])
                try fileSystem.remove(directory + "/" + name)
            } else if name.hasSuffix(".log"), let base = Int64(name.dropLast(4)) {
                bases.append(base)
            }
        }
        bases.sort()
        if bases.isEmpty { bases = [0] }
        let checkpoint = try readCheckpoint()
        let recoveryPoint = checkpoint?.recoveryPoint ?? 0
        var producers = checkpoint?.producers ?? ProducerStateTable()

        var segments: [LogSegment] = []
        for (i, base) in bases.enumerated() {
            let isLast = i == bases.count - 1
            let segment = try LogSegment(
                directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes,
                preallocateBytes: isLast ? preallocateBytes : 0, fileSystem: fileSystem)
            let belowRecoveryPoint = !isLast && bases[i + 1] <= recoveryPoint
            if belowRecoveryPoint {
                if try !segment.loadIndexesIfConsistent() {
                    logger.warning("rebuilding indexes that do not fit their log", metadata: ["segment": "\(segment.file.path)"])
                    try recover(segment, isLast: false, recoveryPoint: recoveryPoint, producers: &producers)
                }
            } else {
                try recover(segment, isLast: isLast, recoveryPoint: recoveryPoint, producers: &producers)
            }
            if let previous = segments.last, previous.nextOffset > segment.baseOffset {
                throw StorageError.corruption(
                    path: segment.file.path, position: 0,
                    reason: "segment starts at offset \(segment.baseOffset) but the one before ends at \(previous.nextOffset)")
            }
            segments.append(segment)
        }
        // What was read back may still sit only in the page cache (a process crash, not a machine
        // crash): sync it before it counts as committed.
        try segments.last!.file.sync()
        let nextOffset = segments.last!.nextOffset
        return Loaded(segments: segments, producers: producers, nextOffset: nextOffset)
    }

    /// Re-reads a segment, checking every batch, and rebuilds its indexes.
    private func recover(
        _ segment: LogSegment, isLast: Bool, recoveryPoint: Int64, producers: inout ProducerStateTable
    ) throws {
        try segment.resetIndexes()
        var walker = BatchWalker(file: segment.file, from: 0, to: segment.size)
        while true {
            let found: BatchWalker.Found
            do {
                guard let next = try walker.next(verify: true) else { break }
                guard segment.canAppend(next.header) else {
                    throw BatchWalker.Invalid(position: next.position, reason: .malformed("offset \(next.header.baseOffset) out of order"))
                }
                found = next
            } catch let invalid as BatchWalker.Invalid {
                guard isLast, segment.nextOffset >= recoveryPoint else {
                    throw StorageError.corruption(
                        path: segment.file.path, position: invalid.position, reason: invalid.reason.description)
                }
                let cut = segment.size - invalid.position
                if try Self.onlyZeros(in: segment.file, from: invalid.position, to: segment.size) {
                    // The space written ahead of the appends (see `LogSegment.append`): nothing lost.
                    logger.debug(
                        "dropped the unused zero-filled tail of the log",
                        metadata: ["segment": "\(segment.file.path)", "position": "\(invalid.position)", "bytes": "\(cut)"])
                } else {
                    logger.warning(
                        "cut a torn tail off the log",
                        metadata: [
                            "segment": "\(segment.file.path)", "position": "\(invalid.position)", "bytes": "\(cut)",
                            "reason": "\(invalid.reason)",
                        ])
                }
                try segment.truncateLog(to: invalid.position)
                break
            }
            try segment.index(found.header, at: found.position)
            if found.header.baseOffset >= recoveryPoint, let stamp = found.header.producer {
                producers.record(
                    stamp, recordCount: Int(found.header.recordCount), baseOffset: found.header.baseOffset,
                    lastOffset: found.header.lastOffset)
            }
        }
        if !isLast { try segment.seal() }
    }

    /// Whether the file holds nothing but zero bytes from `start` to `end`.
    static func onlyZeros(in file: any StorageFile, from start: Int64, to end: Int64) throws -> Bool {
        var position = start
        while position < end {
            let chunk = try file.read(at: position, count: Int(min(1 << 20, end - position)))
            guard !chunk.isEmpty else { return true }
            if chunk.contains(where: { $0 != 0 }) { return false }
            position += Int64(chunk.count)
        }
        return true
    }

    private func readCheckpoint() throws -> PartitionCheckpoint? {
        guard let bytes = try fileSystem.readWholeFile(directory + "/" + PartitionCheckpoint.fileName) else { return nil }
        do {
            return try JSONDecoder().decode(PartitionCheckpoint.self, from: Data(bytes))
        } catch {
            // The checkpoint is written atomically, so this is damage; recovering from offset 0 is
            // slower but never wrong.
            logger.warning("ignoring an unreadable checkpoint; recovering the whole log", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
