import Synchronization

/// Milliseconds since the Unix epoch, UTC: the one clock type every component that stores or
/// compares wall times takes (the broker's log and groups, the event store, the read models, the
/// command handler, the in-memory bus), so that tests control time and production reads
/// `WallTime` (skewable for fault injection).
public protocol WallClock: Sendable {
    func nowMilliseconds() -> Int64
}

public struct SystemWallClock: WallClock {
    public init() {}

    public func nowMilliseconds() -> Int64 { WallTime.nowMilliseconds() }
}

/// A clock that moves only when told to.
public final class ManualWallClock: WallClock {
    private let now: Mutex<Int64>

    public init(_ start: Int64 = 1_700_000_000_000) { now = Mutex(start) }

    public func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    public func advance(by milliseconds: Int64) { now.withLock { $0 += milliseconds } }
}
