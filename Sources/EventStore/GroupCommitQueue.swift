/// The queue in front of a store's one writer: writes that arrive while a transaction runs wait,
/// and the next transaction takes all of them (up to a batch limit). One commit then covers many
/// commands, so throughput grows with concurrency.
///
/// Pure state, kept under the store's lock; each store runs its drains its own way (the SQLite
/// store through a `CommitScheduler`, the PostgreSQL store in a task).
public struct GroupCommitQueue<Job> {
    public private(set) var jobs: [Job] = []
    /// A drain is scheduled or running: jobs queued now are left to it.
    public private(set) var draining = false
    public private(set) var closed = false

    public init() {}

    public enum Admission {
        /// The store is closed: the job is refused.
        case closed
        /// No drain was running: the caller starts one.
        case startDrain
        /// A drain will take the job.
        case joined
    }

    public mutating func enqueue(_ job: Job) -> Admission {
        guard !closed else { return .closed }
        jobs.append(job)
        if draining { return .joined }
        draining = true
        return .startDrain
    }

    /// Up to `maxBatch` queued jobs, in the order they came.
    public mutating func take(upTo maxBatch: Int) -> [Job] {
        let count = min(jobs.count, maxBatch)
        defer { jobs.removeFirst(count) }
        return Array(jobs.prefix(count))
    }

    /// A round committed: true when jobs wait (the drain goes on), false when the drain ends.
    public mutating func roundFinished() -> Bool {
        if jobs.isEmpty { draining = false }
        return draining
    }

    /// Refuses new jobs from now on; those queued stay for whoever drains last.
    public mutating func close() { closed = true }

    /// For a drain that takes over outside the usual start (a store's `close()`).
    public mutating func markDraining(_ value: Bool) { draining = value }
}
