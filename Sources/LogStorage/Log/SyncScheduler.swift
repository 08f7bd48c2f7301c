import Dispatch

/// Where and when a log runs the fdatasync that acknowledges its appends.
///
/// The log decides *what* one sync covers (every append written before it starts: group
/// commit); a scheduler decides *where* it blocks. The default blocks a background thread, which
/// is right for any caller. A server whose appends come from event loops can do what Redis does
/// with `appendfsync always`: sync on the loop itself once it has handled what its last poll
/// returned, so that no thread is woken to sync and none to resume the appenders (see the
/// broker's `EventLoopSyncScheduler`).
public protocol SyncScheduler: Sendable {
    /// Runs `sync` soon, on a thread that may block for as long as the disk takes. `sync` may
    /// call `schedule` again, when appends arrived while it ran.
    func schedule(_ sync: @escaping @Sendable () -> Void)
}

/// Syncs on a thread of Dispatch's global pool.
public struct BackgroundSyncScheduler: SyncScheduler {
    public init() {}

    public func schedule(_ sync: @escaping @Sendable () -> Void) {
        DispatchQueue.global().async(execute: sync)
    }
}
