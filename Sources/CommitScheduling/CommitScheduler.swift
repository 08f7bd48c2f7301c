import Dispatch

/// Where and when the blocking half of a durable write runs: the broker log's fdatasync, the
/// event store's SQLite commit.
///
/// The store decides *what* one commit covers (every write queued before it starts: group
/// commit); a scheduler decides *where* it blocks. The default blocks a background thread, which
/// is right for any caller. A server whose writes come from event loops can do what Redis does
/// with `appendfsync always`: commit on the loop itself once it has handled what its last poll
/// returned, so that no thread is woken to commit and none to resume the writers (see
/// RPCHosting's `EventLoopCommitScheduler`).
public protocol CommitScheduler: Sendable {
    /// Runs `commit` soon, on a thread that may block for as long as the disk takes. `commit`
    /// may call `schedule` again, when writes arrived while it ran.
    func schedule(_ commit: @escaping @Sendable () -> Void)
}

/// Commits on a thread of Dispatch's global pool.
public struct BackgroundCommitScheduler: CommitScheduler {
    public init() {}

    public func schedule(_ commit: @escaping @Sendable () -> Void) {
        DispatchQueue.global().async(execute: commit)
    }
}
