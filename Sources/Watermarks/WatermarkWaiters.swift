import Synchronization

/// Long-poll support: readers wait here until a value that only grows (a partition's high
/// watermark, an event store's head position) passes the one they have seen.
///
/// Shared by the broker's log and the event store, which both answer "tell me when there is
/// something after X" without polling.
public final class WatermarkWaiters: Sendable {
    private struct State {
        var highWatermark: Int64
        var nextID = 0
        var waiters: [Int: (offset: Int64, continuation: CheckedContinuation<Void, Never>)] = [:]
    }

    private let state: Mutex<State>

    public init(highWatermark: Int64) { state = Mutex(State(highWatermark: highWatermark)) }

    /// The value now.
    public var current: Int64 { state.withLock { $0.highWatermark } }

    public func advance(to highWatermark: Int64) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.highWatermark = max(state.highWatermark, highWatermark)
            let hw = state.highWatermark
            let ids = state.waiters.filter { $0.value.offset < hw }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        for continuation in ready { continuation.resume() }
    }

    /// Returns once the high watermark is above `offset`, or when the task is cancelled.
    public func wait(untilAbove offset: Int64) async {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.highWatermark > offset || Task.isCancelled { return true }
                    state.waiters[id] = (offset, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    /// Waits until the high watermark is above `offset` or `timeout` passes; true if it moved.
    public func wait(untilAbove offset: Int64, timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.wait(untilAbove: offset)
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}
