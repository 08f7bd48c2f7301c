import Synchronization

/// One command at a time per stream within this process.
///
/// Commands on the same aggregate would otherwise race: all but one would lose on the expected
/// version and be decided again, so a hot aggregate would spend its time retrying. Taking turns
/// per stream (a single writer per entity, as actor-based systems do) leaves the expected-version
/// check for what it is really for: writers in other processes. Different streams never wait
/// for each other, so group commit still batches them.
final class StreamLocks: Sendable {
    /// A stream present here is held; its array holds the waiters, first come first served.
    private let held = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func withLock<T>(_ streamId: String, _ body: () async throws -> T) async rethrows -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = held.withLock { held -> Bool in
                guard held[streamId] != nil else {
                    held[streamId] = []
                    return true
                }
                held[streamId]!.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
        defer { release(streamId) }
        return try await body()
    }

    private func release(_ streamId: String) {
        let next = held.withLock { held -> CheckedContinuation<Void, Never>? in
            guard var waiters = held[streamId], !waiters.isEmpty else {
                held[streamId] = nil
                return nil
            }
            let next = waiters.removeFirst()
            held[streamId] = waiters
            return next
        }
        next?.resume()
    }
}
