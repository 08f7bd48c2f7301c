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
}
