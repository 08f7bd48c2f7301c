public import CoreMetrics

/// What every event store records, labelled by engine (`store="sqlite"` or `"postgres"`):
///
/// - `eventstore_append_duration_seconds`: an append from its call to its answer, waiting for
///   its group commit included (what a command pays for durability).
/// - `eventstore_commit_batch_size`: how many writes one transaction carried (group commit at work).
public struct StoreMetrics: Sendable {
    public let appendDuration: CoreMetrics.Timer
    public let commitBatchSize: Recorder

    public init(store: String) {
        appendDuration = CoreMetrics.Timer(label: "eventstore_append_duration_seconds", dimensions: [("store", store)])
        commitBatchSize = Recorder(label: "eventstore_commit_batch_size", dimensions: [("store", store)], aggregate: true)
    }

    public func appendFinished(startedAt start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        appendDuration.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
