/// One entry of a segment's offset index: a batch's base offset (relative to the segment) and
/// the byte position where the batch starts.
struct OffsetIndexEntry: Hashable {
    var relativeOffset: UInt32
    var position: UInt32
    static let size = 8
}

/// One entry of a segment's time index: the largest timestamp seen up to a batch, and that
/// batch's base offset (relative to the segment).
struct TimeIndexEntry: Hashable {
    var timestamp: Int64
    var relativeOffset: UInt32
    static let size = 12
}

/// Sparse indexes are kept in memory and mirrored to their files with plain writes. They carry no
/// checksum and are not synced on every append: after a crash they are checked and, when they do
/// not fit the log, rebuilt from it (as Kafka does).
enum IndexFileCoding {
    static func encode(_ entry: OffsetIndexEntry) -> [UInt8] {
        ByteWriter.bytes(count: OffsetIndexEntry.size) { writer in
            writer.put(entry.relativeOffset)
            writer.put(entry.position)
        }
    }

    static func encode(_ entry: TimeIndexEntry) -> [UInt8] {
        ByteWriter.bytes(count: TimeIndexEntry.size) { writer in
            writer.put(entry.timestamp)
            writer.put(entry.relativeOffset)
        }
    }

    /// The entries of an offset index file, or nil when its size is not whole entries.
    static func offsetEntries(_ bytes: [UInt8]) -> [OffsetIndexEntry]? {
        guard bytes.count % OffsetIndexEntry.size == 0 else { return nil }
        return ByteReader.reading(bytes[...]) { reader in
            var entries: [OffsetIndexEntry] = []
            while reader.remaining > 0 {
                guard let relative: UInt32 = try? reader.get(), let position: UInt32 = try? reader.get() else { return nil }
                entries.append(OffsetIndexEntry(relativeOffset: relative, position: position))
            }
            return entries
        }
    }

    static func timeEntries(_ bytes: [UInt8]) -> [TimeIndexEntry]? {
        guard bytes.count % TimeIndexEntry.size == 0 else { return nil }
        return ByteReader.reading(bytes[...]) { reader in
            var entries: [TimeIndexEntry] = []
            while reader.remaining > 0 {
                guard let timestamp: Int64 = try? reader.get(), let relative: UInt32 = try? reader.get() else { return nil }
                entries.append(TimeIndexEntry(timestamp: timestamp, relativeOffset: relative))
            }
            return entries
        }
    }
}

extension Array {
    /// Index of the last element for which `isAtOrBelow` holds, in a sorted array (binary search).
    func lastIndex(atOrBelow isAtOrBelow: (Element) -> Bool) -> Int? {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if isAtOrBelow(self[middle]) { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : low - 1
    }
}
