import SQLite

public struct ParkedRow: Sendable, Hashable {
    public var id: Int64
    public var state: String
    public var topic: String
    public var partition: Int
    public var offset: Int64
    public var eventId: String
    public var eventType: String
    public var streamId: String
    public var streamVersion: Int64
    public var position: Int64
    public var error: String
    public var attempts: Int
    public var parkedAt: Int64
    public var data: [UInt8]?
}

/// Row counts of the models: of every projection's table, and of the parked events.
public struct ReadModelCounts: Sendable, Hashable {
    /// By table name.
    public var rows: [String: Int]
    public var parked: Int

    /// The rows of `table` (0 for a table no projection has).
    public subscript(table: String) -> Int { rows[table] ?? 0 }
}

/// A page of rows and whether more follow.
public struct Page<Row: Sendable>: Sendable {
    public var rows: [Row]
    public var hasMore: Bool
}

extension ReadModelStore {
    /// The first parked event (in any state) at or below `position`, of `streamId` or of
    /// any stream when nil: what a read-your-writes answer at that position would silently miss.
    /// Parked events count as handled for the watermark, so that one poison event does not stop
    /// every other stream's reads; a query that needs such an event must hear about it instead.
    public func firstParked(atOrBelow position: Int64, streamId: String?) throws -> ParkedRow? {
        let columns = """
            SELECT id, state, topic, partition, "offset", event_id, event_type, stream_id, stream_version, position, error,
                attempts, parked_at FROM parked
            """
        func row(_ row: any ReadModelRow) -> ParkedRow {
            ParkedRow(
                id: row.int64(0), state: row.text(1), topic: row.text(2), partition: Int(row.int64(3)), offset: row.int64(4),
                eventId: row.text(5), eventType: row.text(6), streamId: row.text(7), streamVersion: row.int64(8), position: row.int64(9),
                error: row.text(10), attempts: Int(row.int64(11)), parkedAt: row.int64(12), data: nil)
        }
        return try read { db in
            if let streamId {
                return try db.first(
                    columns + " WHERE stream_id = ? AND position > 0 AND position <= ? ORDER BY stream_version LIMIT 1",
                    .text(streamId), .integer(position), row: row)
            }
            return try db.first(columns + " WHERE position > 0 AND position <= ? ORDER BY position LIMIT 1", .integer(position), row: row)
        }
    }

    /// Parked events after id `after`, oldest first.
    public func parked(afterId: Int64, limit: Int) throws -> Page<ParkedRow> {
        try read { db in
            page(
                try db.query(
                    """
                    SELECT id, state, topic, partition, "offset", event_id, event_type, stream_id, stream_version, position, error,
                        attempts, parked_at, data
                    FROM parked WHERE id > ? ORDER BY id LIMIT ?
                    """, .integer(afterId), .integer(Int64(limit + 1))
                ) {
                    ParkedRow(
                        id: $0.int64(0), state: $0.text(1), topic: $0.text(2), partition: Int($0.int64(3)), offset: $0.int64(4),
                        eventId: $0.text(5), eventType: $0.text(6), streamId: $0.text(7), streamVersion: $0.int64(8), position: $0.int64(9),
                        error: $0.text(10), attempts: Int($0.int64(11)), parkedAt: $0.int64(12), data: $0.isNull(13) ? nil : $0.bytes(13))
                }, limit)
        }
    }

    public func counts() throws -> ReadModelCounts {
        try read { db in try Self.counts(db) }
    }

    static func counts(_ db: any ReadModelDatabase) throws -> ReadModelCounts {
        func count(_ table: String) throws -> Int { Int(try db.first("SELECT count(*) FROM \(table)") { $0.int64(0) } ?? 0) }
        var rows: [String: Int] = [:]
        for table in Projector.registered.projections.flatMap(\.tables) { rows[table.name] = try count(table.name) }
        return ReadModelCounts(rows: rows, parked: try count("parked"))
    }

    /// The models as canonical text, one line per row in key order: two stores with equal dumps
    /// hold the same read models (the bookkeeping of offsets and parked events is left out).
    public func canonicalDump() throws -> String {
        try read { db in
            var lines: [String] = []
            for table in Projector.registered.modelTables {
                lines += try db.query("SELECT * FROM \(table.name) ORDER BY \(table.orderBy)", []) { row in
                    table.name + "|" + (0..<row.columnCount).map { row.text($0) }.joined(separator: "|")
                }
            }
            return lines.joined(separator: "\n")
        }
    }
}

func page<Row>(_ rows: [Row], _ limit: Int) -> Page<Row> {
    Page(rows: Array(rows.prefix(limit)), hasMore: rows.count > limit)
}
