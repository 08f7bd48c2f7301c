/// What the log remembers about an idempotent producer in one partition: its last few batches,
/// so a retried batch is recognised and answered with its original offsets (Kafka keeps five).
struct ProducerBatchMetadata: Hashable, Codable {
    var firstSequence: Int32
    var lastSequence: Int32
    var baseOffset: Int64
    var lastOffset: Int64
}

/// Per-partition sequence tracking for idempotent producers.
struct ProducerStateTable: Codable, Equatable {
    static let remembered = 5

    private(set) var producers: [Int64: [ProducerBatchMetadata]] = [:]

    enum Check: Equatable {
        /// The next batch in sequence: append it.
        case append
        /// Seen before: answer with the stored offsets, append nothing.
        case duplicate(ProducerBatchMetadata)
        /// A gap or a sequence from long ago: refuse.
        case outOfOrder(expected: Int32)
    }

    func check(_ stamp: ProducerStamp, recordCount: Int) -> Check {
        let lastSequence = stamp.baseSequence &+ Int32(recordCount - 1)
        guard let batches = producers[stamp.producerId], let latest = batches.last else {
            return stamp.baseSequence == 0 ? .append : .outOfOrder(expected: 0)
        }
        if let seen = batches.first(where: { $0.firstSequence == stamp.baseSequence && $0.lastSequence == lastSequence }) {
            return .duplicate(seen)
        }
        let expected = latest.lastSequence &+ 1
        return stamp.baseSequence == expected ? .append : .outOfOrder(expected: expected)
    }

    /// Notes a batch that is now in the log (appended, or replayed while recovering).
    mutating func record(_ stamp: ProducerStamp, recordCount: Int, baseOffset: Int64, lastOffset: Int64) {
        var batches = producers[stamp.producerId] ?? []
        batches.append(
            ProducerBatchMetadata(
                firstSequence: stamp.baseSequence, lastSequence: stamp.baseSequence &+ Int32(recordCount - 1),
                baseOffset: baseOffset, lastOffset: lastOffset))
        if batches.count > Self.remembered { batches.removeFirst(batches.count - Self.remembered) }
        producers[stamp.producerId] = batches
    }

    /// Drops what is known about batches at or after `offset`: a checkpoint taken at `offset`
    /// must not remember batches that a crash could still cut off.
    mutating func forget(after offset: Int64) {
        for (producer, batches) in producers {
            let kept = batches.filter { $0.lastOffset < offset }
            producers[producer] = kept.isEmpty ? nil : kept
        }
    }
}
