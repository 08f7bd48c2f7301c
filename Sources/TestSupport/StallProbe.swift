import Synchronization

/// Counts calls and keeps the longest, from many tasks.
public final class CallTally: Sendable {
    private let state = Mutex((count: 0, longest: Duration.zero))

    public init() {}

    public func add(_ took: Duration = .zero) {
        state.withLock {
            $0.count += 1
            $0.longest = max($0.longest, took)
        }
    }

    public var count: Int { state.withLock { $0.count } }
    public var longest: Duration { state.withLock { $0.longest } }
}

/// What the stall tests share: a load that keeps going in the background, and calls measured
/// beside it.
public enum StallProbe {
    /// Runs `call` from every client in a loop (errors ignored) until the returned task is
    /// cancelled; the tally counts the calls made.
    public static func load<Client: Sendable>(
        from clients: [Client], _ call: @escaping @Sendable (Client) async throws -> Void
    ) -> (Task<Void, Never>, CallTally) {
        let tally = CallTally()
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                for client in clients {
                    group.addTask {
                        while !Task.isCancelled {
                            try? await call(client)
                            tally.add()
                        }
                    }
                }
            }
        }
        return (task, tally)
    }

    /// Runs `call` from every client in a loop for `duration`, timing each.
    public static func measure<Client: Sendable>(
        from clients: [Client], for duration: Duration, _ call: @escaping @Sendable (Client) async throws -> Void
    ) async throws -> CallTally {
        let tally = CallTally()
        let until = ContinuousClock.now + duration
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    while ContinuousClock.now < until {
                        let started = ContinuousClock.now
                        try await call(client)
                        tally.add(ContinuousClock.now - started)
                    }
                }
            }
            try await group.waitForAll()
        }
        return tally
    }
}
