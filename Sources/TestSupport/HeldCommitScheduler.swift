import CommitScheduling
import Synchronization

/// A commit scheduler that holds what it is given until the test runs it, so a test decides
/// exactly which writes one commit covers.
public final class HeldCommitScheduler: CommitScheduler {
    private let work = Mutex<[@Sendable () -> Void]>([])

    public init() {}

    /// Commits asked for and not yet run.
    public var held: Int { work.withLock { $0.count } }

    public func schedule(_ commit: @escaping @Sendable () -> Void) { work.withLock { $0.append(commit) } }

    /// Runs what is held now (not what that schedules).
    public func runHeld() {
        for commit in work.withLock({ held in defer { held = [] }; return held }) { commit() }
    }
}
