import Synchronization
import WallTime

/// How one partition's log rolls, retains and cleans. Defaults follow Kafka's where they make
/// sense on one machine (smaller segments: 64 MiB rather than 1 GiB).
public struct LogConfig: Sendable, Hashable, Codable {
    public enum CleanupPolicy: String, Sendable, Hashable, Codable, CaseIterable {
        /// Whole old segments are deleted by time and size.
        case delete
        /// Only the latest record per key is kept; tombstones go after `deleteRetentionMs`.
        case compact
    }

    /// Roll to a new segment before the active one would pass this size.
    public var segmentBytes: Int = 64 << 20
    /// Roll a non-empty segment once it has taken appends for this long.
    public var segmentMs: Int64 = 7 * 86_400_000
    /// Delete sealed segments whose newest record is older than this; -1 keeps them forever.
    public var retentionMs: Int64 = 7 * 86_400_000
    /// Delete the oldest sealed segments while the log stays at or above this size; -1: no limit.
    public var retentionBytes: Int64 = -1
    public var cleanupPolicy: CleanupPolicy = .delete
    /// On compacted logs, how long a tombstone stays readable after it was written.
    public var deleteRetentionMs: Int64 = 86_400_000
    /// Bytes of batches between two sparse index entries.
    public var indexIntervalBytes: Int = 4096
    /// The largest batch one append may write.
    public var maxBatchBytes: Int = 8 << 20

    public init() {}
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
