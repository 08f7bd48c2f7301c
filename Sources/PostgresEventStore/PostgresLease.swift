import Logging
import PostgresConnections
import PostgresNIO

extension PostgresEventStore {
    /// Runs `body` only while this process holds the lease `name`, among every process using the
    /// same database and schema; returns when `body` returns, or, while waiting for the lease,
    /// once `keepTrying` says no (a graceful shutdown); throws `CancellationError` when cancelled.
    ///
    /// The lease is a PostgreSQL session advisory lock, held on a connection kept for the purpose:
    /// when the holder dies (kill -9 included), the server sees its connection close and releases
    /// the lock, and the next process trying (every `retryEvery`) takes it. While held, the
    /// connection is checked every `retryEvery`; if that fails the lease is considered lost and
    /// `body` is cancelled. What this cannot rule out is a holder that stops answering yet keeps
    /// publishing for up to one check (a paused process): its duplicates are what the relay's
    /// tail check at the start of each stretch removes.
    public func whileHolding(
        lease name: String, retryEvery: Duration = .seconds(1), logger: Logger, keepTrying: @Sendable () -> Bool = { true },
        holding: @escaping @Sendable (Bool) -> Void = { _ in }, _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        let key = "jframe-lease:\(tables.schema):\(name)"
        while keepTrying() {
            try Task.checkCancellation()
            let outcome: LeaseOutcome
            do {
                outcome = try await client.withConnection { connection in
                    let held =
                        try await connection.query("SELECT pg_try_advisory_lock(hashtext(\(key)))", logger: logger)
                        .collect().first?.decode(Bool.self) ?? false
                    guard held else { return LeaseOutcome.notHeld }
                    logger.notice("took the lease", metadata: ["lease": "\(name)"])
                    holding(true)
                    defer {
                        holding(false)
                        logger.notice("gave up the lease", metadata: ["lease": "\(name)"])
                    }
                    let result = try await withThrowingTaskGroup(of: LeaseOutcome.self) { group in
                        group.addTask {
                            try await body()
                            return .finished
                        }
                        group.addTask {
                            while true {
                                try await Task.sleep(for: retryEvery)
                                _ = try await connection.query("SELECT 1", logger: logger).collect()
                            }
                        }
                        defer { group.cancelAll() }
                        return try await group.next() ?? .finished
                    }
                    _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext(\(key)))", logger: logger).collect()
                    return result
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                logger.warning(
                    "the lease's connection failed; trying again", metadata: ["lease": "\(name)", "error": "\(PostgresErrors.describe(error))"])
                outcome = .notHeld
            }
            if outcome == .finished { return }
            try await Task.sleep(for: retryEvery)
        }
    }
}

private enum LeaseOutcome: Sendable {
    case notHeld
    case finished
}
