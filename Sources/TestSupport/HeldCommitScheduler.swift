import CommitScheduling
import Synchronization

/// A commit scheduler that holds what it is given until the test runs it, so a test decides
/// exactly which writes one commit covers.
public final class HeldCommitScheduler: CommitScheduler {
    private let work = Mutex<[@Sendable () -> Void]>([])

    public init() {}

    /// Commits asked for and not yet run.
    public var held: Int { work.withLock { $0.count } }

    private let coverings = Mutex<[Int]>([])

    public func schedule(_ commit: @escaping @Sendable () -> Void) { work.withLock { $0.append(commit) } }

    public func schedule(covering writes: Int, _ commit: @escaping @Sendable () -> Void) {
        coverings.withLock { $0.append(writes) }
        schedule(commit)
    }

    /// What each `schedule(covering:_:)` was told, in order.
    public var covering: [Int] { coverings.withLock { $0 } }

    /// Runs what is held now (not what that schedules).
    public func runHeld() {
        for commit in work.withLock({ held in
            defer { held = [] }
            return held
        }) { commit() }
    }
}
