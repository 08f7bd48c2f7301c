import SQLite

/// A bank account's row.
public struct AccountRow: Sendable, Hashable {
    public var accountId: String
    public var holder: String
    public var accountType: String
    public var balanceMinor: Int64
    public var currency: String
    public var status: String
    public var openedAt: Int64
    public var updatedAt: Int64
    public var version: Int64
    public var position: Int64
}

/// One movement of a balance.
public struct TransactionRow: Sendable, Hashable {
    public var version: Int64
    public var kind: String
    public var amountMinor: Int64
    public var currency: String
    public var balanceAfter: Int64
    public var at: Int64
    public var position: Int64
}

public struct OrderRow: Sendable, Hashable {
    public var orderId: String
    public var email: String
    public var firstName: String
    public var lastName: String
    public var description: String
    public var quantity: Int
    public var createdAt: Int64
    public var position: Int64
}

public struct CustomerRow: Sendable, Hashable {
    public var email: String
    public var firstName: String
    public var lastName: String
    public var orderCount: Int
    public var firstOrderAt: Int64
    public var lastOrderAt: Int64
}

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

/// Row counts of the models.
public struct ReadModelCounts: Sendable, Hashable {
    public var accounts: Int
    public var orders: Int
    public var customers: Int
    public var parked: Int
}

/// A page of rows and whether more follow.
public struct Page<Row: Sendable>: Sendable {
    public var rows: [Row]
    public var hasMore: Bool
}

/// Filters of FindAccounts; every given one must match.
public struct AccountFilter: Sendable {
    public var holder: String?
    /// (currency, minor units): balance strictly greater than.
    public var balanceAbove: (currency: String, minor: Int64)?
    public var balanceBelow: (currency: String, minor: Int64)?
    public var status: String?

    public init(holder: String? = nil, balanceAbove: (String, Int64)? = nil, balanceBelow: (String, Int64)? = nil, status: String? = nil) {
        self.holder = holder
        self.balanceAbove = balanceAbove.map { (currency: $0.0, minor: $0.1) }
        self.balanceBelow = balanceBelow.map { (currency: $0.0, minor: $0.1) }
        self.status = status
    }
}

extension ReadModelStore {
    static let accountColumns =
        "account_id, holder, account_type, balance_minor, currency, status, opened_at, updated_at, version, position"

    static func account(_ row: any ReadModelRow) -> AccountRow {
        AccountRow(
            accountId: row.text(0), holder: row.text(1), accountType: row.text(2), balanceMinor: row.int64(3), currency: row.text(4),
            status: row.text(5), openedAt: row.int64(6), updatedAt: row.int64(7), version: row.int64(8), position: row.int64(9))
    }

    public func account(_ accountId: String) throws -> AccountRow? {
        try read { db in try db.first("SELECT \(Self.accountColumns) FROM accounts WHERE account_id = ?", .text(accountId), row: Self.account) }
    }

    /// Accounts ordered by id after `after`, matching `filter`.
    public func accounts(matching filter: AccountFilter = AccountFilter(), after: String?, limit: Int) throws -> Page<AccountRow> {
        var conditions = ["account_id > ?"]
        var values: [SQLiteValue] = [.text(after ?? "")]
        if let holder = filter.holder {
            conditions.append("holder_key = ?")
            values.append(.text(Projector.key(holder)))
        }
        if let (currency, minor) = filter.balanceAbove {
            conditions.append("currency = ? AND balance_minor > ?")
            values += [.text(currency), .integer(minor)]
        }
        if let (currency, minor) = filter.balanceBelow {
            conditions.append("currency = ? AND balance_minor < ?")
            values += [.text(currency), .integer(minor)]
        }
        if let status = filter.status {
            conditions.append("status = ?")
            values.append(.text(status))
        }
        values.append(.integer(Int64(limit + 1)))
        let sql = "SELECT \(Self.accountColumns) FROM accounts WHERE \(conditions.joined(separator: " AND ")) ORDER BY account_id LIMIT ?"
        return try read { db in page(try db.query(sql, values, row: Self.account), limit) }
    }

    /// An account's transactions after version `after`, oldest first.
    public func transactions(of accountId: String, afterVersion: Int64, limit: Int) throws -> Page<TransactionRow> {
        try read { db in
            page(
                try db.query(
                    """
                    SELECT version, kind, amount_minor, currency, balance_after, at, position FROM account_transactions
                    WHERE account_id = ? AND version > ? ORDER BY version LIMIT ?
                    """, .text(accountId), .integer(afterVersion), .integer(Int64(limit + 1))
                ) {
                    TransactionRow(
                        version: $0.int64(0), kind: $0.text(1), amountMinor: $0.int64(2), currency: $0.text(3), balanceAfter: $0.int64(4),
                        at: $0.int64(5), position: $0.int64(6))
                }, limit)
        }
    }

    static let orderColumns = "order_id, customer_email, first_name, last_name, description, quantity, created_at, position"

    static func order(_ row: any ReadModelRow) -> OrderRow {
        OrderRow(
            orderId: row.text(0), email: row.text(1), firstName: row.text(2), lastName: row.text(3), description: row.text(4),
            quantity: Int(row.int64(5)), createdAt: row.int64(6), position: row.int64(7))
    }

    public func order(_ orderId: String) throws -> OrderRow? {
        try read { db in try db.first("SELECT \(Self.orderColumns) FROM orders WHERE order_id = ?", .text(orderId), row: Self.order) }
    }

    /// Orders after global position `afterPosition`, oldest first, optionally of one customer.
    public func orders(customerEmail: String?, afterPosition: Int64, limit: Int) throws -> Page<OrderRow> {
        try read { db in
            if let customerEmail {
                return page(
                    try db.query(
                        "SELECT \(Self.orderColumns) FROM orders WHERE customer_key = ? AND position > ? ORDER BY position LIMIT ?",
                        .text(Projector.key(customerEmail)), .integer(afterPosition), .integer(Int64(limit + 1)), row: Self.order), limit)
            }
            return page(
                try db.query(
                    "SELECT \(Self.orderColumns) FROM orders WHERE position > ? ORDER BY position LIMIT ?",
                    .integer(afterPosition), .integer(Int64(limit + 1)), row: Self.order), limit)
        }
    }

    static func customer(_ row: any ReadModelRow) -> CustomerRow {
        CustomerRow(
            email: row.text(0), firstName: row.text(1), lastName: row.text(2), orderCount: Int(row.int64(3)), firstOrderAt: row.int64(4),
            lastOrderAt: row.int64(5))
    }

    static let customerColumns = "email, first_name, last_name, order_count, first_order_at, last_order_at"

    public func customer(_ email: String) throws -> CustomerRow? {
        try read { db in
            try db.first("SELECT \(Self.customerColumns) FROM customers WHERE email_key = ?", .text(Projector.key(email)), row: Self.customer)
        }
    }

    /// Customers ordered by (lower-cased) email after `after`.
    public func customers(after: String?, limit: Int) throws -> Page<CustomerRow> {
        try read { db in
            page(
                try db.query(
                    "SELECT \(Self.customerColumns) FROM customers WHERE email_key > ? ORDER BY email_key LIMIT ?",
                    .text(after.map(Projector.key) ?? ""), .integer(Int64(limit + 1)), row: Self.customer), limit)
        }
    }

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
        return ReadModelCounts(
            accounts: try count("accounts"), orders: try count("orders"), customers: try count("customers"), parked: try count("parked"))
    }

    /// The models as canonical text, one line per row in key order: two stores with equal dumps
    /// hold the same read models (the bookkeeping of offsets and parked events is left out).
    public func canonicalDump() throws -> String {
        try read { db in
            var lines: [String] = []
            for (table, order) in [
                ("accounts", "account_id"), ("account_transactions", "account_id, version"), ("orders", "order_id"),
                ("customers", "email_key"), ("streams", "stream_id"),
            ] {
                lines += try db.query("SELECT * FROM \(table) ORDER BY \(order)", []) { row in
                    table + "|" + (0..<row.columnCount).map { row.text($0) }.joined(separator: "|")
                }
            }
            return lines.joined(separator: "\n")
        }
    }
}

private func page<Row>(_ rows: [Row], _ limit: Int) -> Page<Row> {
    Page(rows: Array(rows.prefix(limit)), hasMore: rows.count > limit)
}
