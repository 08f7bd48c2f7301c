import Domain
import SQLite

/// The bank accounts' read side: one row per account (balance, status, versions) and one per
/// movement of its balance, from `BankAccount` events.
struct AccountsProjection: ReadModelProjection {
    let name = "accounts"
    let tables = [ReadModelTable("accounts", orderBy: "account_id"), ReadModelTable("account_transactions", orderBy: "account_id, version")]
    let eventTypes: Set<String> = [AccountOpened.eventType, FundsDeposited.eventType, FundsWithdrawn.eventType, AccountClosed.eventType]

    let migrations = [
        ReadModelMigration(version: 1) { sql in
            """
            CREATE TABLE IF NOT EXISTS \(sql.table("accounts"))(
                account_id TEXT PRIMARY KEY, holder TEXT NOT NULL, holder_key TEXT NOT NULL, account_type TEXT NOT NULL,
                balance_minor \(sql.int64) NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
                opened_at \(sql.int64) NOT NULL, updated_at \(sql.int64) NOT NULL, version \(sql.int64) NOT NULL, position \(sql.int64) NOT NULL
            ) \(sql.withoutRowID);
            CREATE INDEX IF NOT EXISTS accounts_by_holder ON \(sql.table("accounts"))(holder_key, account_id);
            CREATE INDEX IF NOT EXISTS accounts_by_balance ON \(sql.table("accounts"))(currency, balance_minor);
            CREATE TABLE IF NOT EXISTS \(sql.table("account_transactions"))(
                account_id TEXT NOT NULL, version \(sql.int64) NOT NULL, kind TEXT NOT NULL, amount_minor \(sql.int64) NOT NULL,
                currency TEXT NOT NULL, balance_after \(sql.int64) NOT NULL, at \(sql.int64) NOT NULL, position \(sql.int64) NOT NULL,
                PRIMARY KEY(account_id, version)
            ) \(sql.withoutRowID);
            """
        }
    ]

    /// Deposits and withdrawals of one batch are folded in memory (`AccountFold`).
    func makeBatch() -> (any ProjectionBatch)? { AccountFold() }

    func apply(_ event: any DomainEvent, _ stored: ProjectedEvent, to db: any ReadModelDatabase, batch: (any ProjectionBatch)?) throws {
        let fold = batch as? AccountFold
        switch event {
        case let opened as AccountOpened:
            let changed = try db.run(
                """
                INSERT INTO accounts(account_id, holder, holder_key, account_type, balance_minor, currency, status,
                    opened_at, updated_at, version, position)
                VALUES(?, ?, ?, ?, ?, ?, 'OPEN', ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                .text(opened.accountId), .text(opened.holder), .text(Projector.key(opened.holder)), .text(opened.accountType.rawValue),
                .integer(opened.openingBalance.amountMinor), .text(opened.openingBalance.currency), .integer(stored.recordedAt),
                .integer(stored.recordedAt), .integer(stored.streamVersion), .integer(stored.position))
            guard changed == 1 else { throw ProjectionError("account \(opened.accountId) is already open") }
            try record(opened.accountId, "OPENING_BALANCE", opened.openingBalance, after: opened.openingBalance.amountMinor, stored, db)
        case let deposited as FundsDeposited:
            try move(deposited.accountId, by: deposited.amount, kind: "DEPOSIT", stored, db, fold)
        case let withdrawn as FundsWithdrawn:
            try move(withdrawn.accountId, by: withdrawn.amount, kind: "WITHDRAWAL", stored, db, fold)
        case let closed as AccountClosed:
            try fold?.flush(closed.accountId, to: db)
            let changed = try db.run(
                "UPDATE accounts SET status = 'CLOSED', updated_at = ?, version = ?, position = ? WHERE account_id = ?",
                .integer(stored.recordedAt), .integer(stored.streamVersion), .integer(stored.position), .text(closed.accountId))
            guard changed == 1 else { throw ProjectionError("account \(closed.accountId) is not in the read model") }
        default:
            throw ProjectionError("the accounts do not take \(stored.type) events")
        }
    }

    /// Adds (deposit) or subtracts (withdrawal) an amount, checked for currency and overflow, and
    /// records the transaction with the balance after it.
    private func move(
        _ accountId: String, by amount: Money, kind: String, _ event: ProjectedEvent, _ db: any ReadModelDatabase, _ fold: AccountFold?
    ) throws {
        let folded = fold?.accounts[accountId]
        guard
            let (balance, currency) = try folded.map({ ($0.balance, $0.currency) })
                ?? db.first(
                    "SELECT balance_minor, currency FROM accounts WHERE account_id = ?", .text(accountId), row: { ($0.int64(0), $0.text(1)) })
        else { throw ProjectionError("account \(accountId) is not in the read model") }
        guard currency == amount.currency else {
            throw ProjectionError("account \(accountId) holds \(currency), the event moves \(amount.currency)")
        }
        let (after, overflow) =
            kind == "DEPOSIT" ? balance.addingReportingOverflow(amount.amountMinor) : balance.subtractingReportingOverflow(amount.amountMinor)
        guard !overflow else { throw ProjectionError("account \(accountId): the balance would overflow") }
        if let fold {
            fold.accounts[accountId] = AccountFold.Account(
                balance: after, currency: currency, updatedAt: event.recordedAt, version: event.streamVersion, position: event.position)
            try record(accountId, kind, amount, after: after, event, db)
            return
        }
        try db.run(
            "UPDATE accounts SET balance_minor = ?, updated_at = ?, version = ?, position = ? WHERE account_id = ?",
            .integer(after), .integer(event.recordedAt), .integer(event.streamVersion), .integer(event.position), .text(accountId))
        try record(accountId, kind, amount, after: after, event, db)
    }

    private func record(_ accountId: String, _ kind: String, _ amount: Money, after: Int64, _ event: ProjectedEvent, _ db: any ReadModelDatabase)
        throws
    {
        try db.insert(
            """
            INSERT INTO account_transactions(account_id, version, kind, amount_minor, currency, balance_after, at, position)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?)
            """,
            .text(accountId), .integer(event.streamVersion), .text(kind), .integer(amount.amountMinor), .text(amount.currency),
            .integer(after), .integer(event.recordedAt), .integer(event.position))
    }
}

/// The accounts a batch moved money in, held in memory and written back once at its end.
///
/// Why: a rebuild page, or a partition's fetched batch, often moves one account many times;
/// folded here, each deposit or withdrawal costs one INSERT (its transaction row, which a
/// networked engine sends with the others in one statement) instead of reading, updating and
/// inserting. Used only where a failure rolls the whole batch back (the writer's first,
/// savepoint-free attempt at a batch), so the fold and the rows can never disagree after a commit.
final class AccountFold: ProjectionBatch {
    struct Account {
        var balance: Int64
        var currency: String
        var updatedAt: Int64
        var version: Int64
        var position: Int64
    }

    var accounts: [String: Account] = [:]

    /// Reads the rows of the accounts `events` move, a few hundred per statement, so a batch
    /// reads each once up front instead of at its first move. Accounts not in the models yet
    /// (opened later in the batch) are read at their first move, as before.
    func prefetch(_ events: [DecodedEvent], from db: any ReadModelDatabase) throws {
        var ids: [String] = []
        var seen = Set(accounts.keys)
        for event in events {
            switch try? event.decoded.get() {
            case let deposited as FundsDeposited where seen.insert(deposited.accountId).inserted: ids.append(deposited.accountId)
            case let withdrawn as FundsWithdrawn where seen.insert(withdrawn.accountId).inserted: ids.append(withdrawn.accountId)
            default: break
            }
        }
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(start + 500, ids.count)])
            let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            for (id, account) in try db.query(
                "SELECT account_id, balance_minor, currency, updated_at, version, position FROM accounts WHERE account_id IN (\(placeholders))",
                chunk.map { .text($0) },
                row: {
                    (
                        $0.text(0),
                        Account(balance: $0.int64(1), currency: $0.text(2), updatedAt: $0.int64(3), version: $0.int64(4), position: $0.int64(5))
                    )
                })
            {
                accounts[id] = account
            }
        }
    }

    /// Writes every folded account back to its row, a few hundred per statement.
    func flush(to db: any ReadModelDatabase) throws {
        let folded = accounts.sorted { $0.key < $1.key }
        accounts = [:]
        for start in stride(from: 0, to: folded.count, by: 200) {
            let chunk = folded[start..<min(start + 200, folded.count)]
            guard chunk.count > 1 else {
                for (id, account) in chunk { try write(id, account, to: db) }
                continue
            }
            // VALUES columns are column1… in SQLite and PostgreSQL alike.
            let rows = Array(repeating: "(?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            try db.run(
                """
                UPDATE accounts SET balance_minor = v.column2, updated_at = v.column3, version = v.column4, position = v.column5
                FROM (VALUES \(rows)) AS v WHERE accounts.account_id = v.column1
                """,
                chunk.flatMap { id, account in
                    [.text(id), .integer(account.balance), .integer(account.updatedAt), .integer(account.version), .integer(account.position)]
                })
        }
    }

    /// Writes one folded account back (before anything else touches its row) and forgets it.
    func flush(_ accountId: String, to db: any ReadModelDatabase) throws {
        guard let account = accounts.removeValue(forKey: accountId) else { return }
        try write(accountId, account, to: db)
    }

    private func write(_ accountId: String, _ account: Account, to db: any ReadModelDatabase) throws {
        try db.run(
            "UPDATE accounts SET balance_minor = ?, updated_at = ?, version = ?, position = ? WHERE account_id = ?",
            .integer(account.balance), .integer(account.updatedAt), .integer(account.version), .integer(account.position),
            .text(accountId))
    }
}
