import EventStore
import Logging
import PostgresConnections
import PostgresNIO

extension PostgresEventStore: VerifiableEventStore {
    /// Every event in position order (its checksum, positions without gaps, each stream's versions
    /// 1, 2, 3…), then that every command result and checkpoint points at a stored event: what
    /// `cqrs verify` reports. PostgreSQL checks its own pages (with data checksums on, if the
    /// cluster was made with them); this checks what the store wrote.
    public func verify(
        pageSize: Int = 1000, progress: (StoreVerification) async throws -> Void = { _ in }
    ) async throws -> StoreVerification {
        var report = StoreVerification()
        report.writeRefusal = writeRefusal
        let tables = self.tables
        let logger = Logger(label: "eventstore.verify")
        var walk = StoreVerification.EventWalk()
        do {
            while true {
                let after = walk.after
                let page = try await withConnection { connection in
                    try await Self.rows(
                        where: "position > $1 ORDER BY position LIMIT $2", Self.binds(after, Int64(pageSize)), on: connection, tables: tables,
                        logger: logger)
                }
                guard !page.isEmpty else { break }
                for (event, stored) in page { walk.visit(event, storedChecksum: stored, into: &report) }
                try await progress(report)
            }
            let head = report.headPosition
            let (orphans, beyond) = try await withConnection { connection in
                let orphans =
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: """
                                SELECT count(*) FROM \(tables.commands) c LEFT JOIN \(tables.events) e ON e.position = c.position
                                WHERE e.position IS NULL OR e.stream_id <> c.stream_id OR e.stream_version <> c.version
                                """), logger: logger
                    )
                    .collect().first?.decode(Int64.self) ?? 0
                var beyond: [(String, Int64)] = []
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT name, position FROM \(tables.checkpoints) WHERE position > $1", binds: Self.binds(head)),
                    logger: logger)
                for try await (name, position) in rows.decode((String, Int64).self) { beyond.append((name, position)) }
                return (orphans, beyond)
            }
            if orphans > 0 { report.report("\(orphans) command results point at events the store does not hold") }
            for (name, position) in beyond {
                report.report("checkpoint '\(name)' is at position \(position), beyond the last event (\(head))")
            }
        } catch let error as EventStoreError {
            report.report("the database cannot be read: \(error)")
        } catch {
            report.report("the database cannot be read: \(PostgresErrors.describe(error))")
        }
        return report
    }
}
