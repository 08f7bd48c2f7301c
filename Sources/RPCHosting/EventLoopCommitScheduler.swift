import ArgumentParser
import CommitScheduling
import NIOPosix

/// Commits on the event loop that asked, after the loop has run what its last poll made ready:
/// what Redis does with `appendfsync always` in `beforeSleep`.
///
/// Every call read in one poll runs (and writes) before the commit that covers them all, whose
/// waiters then resume on that same loop and write their replies: no thread is woken to commit
/// and none to resume a caller. The price is that the loop's other connections wait while it
/// blocks on the disk, as every Redis client does. A write from no event loop (a test, a timer
/// on another thread) commits on a background thread.
///
/// Measured (interleaved A/B of release brokers, one partition, batch 1, on tmpfs so that the
/// disk's noise does not hide it): one producer's ack p50 0.38 ms with a sync thread, 0.20 ms
/// on the loop.
public struct EventLoopCommitScheduler: CommitScheduler {
    private let fallback = BackgroundCommitScheduler()

    public init() {}

    public func schedule(_ commit: @escaping @Sendable () -> Void) {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            loop.execute(commit)
        } else {
            fallback.schedule(commit)
        }
    }
}

/// Where a server binary runs its durable commits, as its flag and environment variable say.
///
/// Every place that commits on an event loop does so only while commits are quick: once one
/// stalls (over 50 ms) or the recent ones average over 5 ms, the next go to a thread until neither
/// has happened for five seconds (`SlowDiskGuard`), so a slow disk holds up the loop's other
/// connections for one commit, not for every one.
public enum CommitPlace: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// On the event loop whose call wrote (`EventLoopCommitScheduler`), while commits are quick.
    case eventLoop = "event-loop"
    /// On a background thread (`BackgroundCommitScheduler`).
    case background
    /// A lone write's commit on its event loop while commits are quick, a group's on a background
    /// thread (`AdaptiveCommitScheduler`).
    case adaptive

    public var scheduler: any CommitScheduler {
        switch self {
        case .eventLoop: SlowDiskGuard(preferred: EventLoopCommitScheduler())
        case .background: BackgroundCommitScheduler()
        case .adaptive: AdaptiveCommitScheduler(lone: SlowDiskGuard(preferred: EventLoopCommitScheduler()), group: BackgroundCommitScheduler())
        }
    }

    /// The broker's default for `--sync-on`.
    public static let brokerDefault = CommitPlace.eventLoop

    /// The flag's value, else the environment variable's, else the binary's default (each
    /// binary's is the one its benchmark measured faster).
    public static func chosen(_ flag: CommitPlace?, environment name: String, default: CommitPlace) throws -> CommitPlace {
        if let flag { return flag }
        guard let value = Environment.string(name) else { return `default` }
        guard let place = CommitPlace(rawValue: value) else {
            throw ValidationError("\(name) must be one of " + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return place
    }
}
