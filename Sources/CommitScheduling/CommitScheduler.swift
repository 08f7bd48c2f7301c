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

    /// `schedule(_:)`, told how many writes the commit will likely cover (those waiting, or what
    /// the store's recent commits took), for a scheduler that puts a lone write's commit
    /// elsewhere than a group's.
    func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void)
}

extension CommitScheduler {
    public func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void) { schedule(commit) }
}

/// Commits a lone write where one scheduler puts it, and a group of writes where another does.
///
/// Why: where a commit is best run depends on how many writes it covers. A lone write (one
/// client, or a quiet moment) waits for the whole path, so a hand-off to a thread and back (two
/// wake-ups, each tens of microseconds on a VM) is a large share of its time; committing on the
/// event loop that wrote saves both. A group comes from many callers, and committing on a thread
/// lets the loops decide the next group while the disk works. The event store takes this one with
/// the event loop for the lone write and a thread for the group (`command-service --commit-on
/// adaptive`, the default).
public struct AdaptiveCommitScheduler: CommitScheduler {
    let lone: any CommitScheduler
    let group: any CommitScheduler

    public init(lone: any CommitScheduler, group: any CommitScheduler) {
        self.lone = lone
        self.group = group
    }

    /// A caller that does not say how many writes the commit covers gets the group's place, the
    /// one that never blocks a loop.
    public func schedule(_ commit: @escaping @Sendable () -> Void) { group.schedule(commit) }

    public func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void) {
        (writes <= 1 ? lone : group).schedule(commit)
    }
}

/// Commits on a thread of Dispatch's global pool.
public struct BackgroundCommitScheduler: CommitScheduler {
    public init() {}

    public func schedule(_ commit: @escaping @Sendable () -> Void) {
        DispatchQueue.global().async(execute: commit)
    }
}
