import Domain
import SQLite

/// The bank accounts' read side: one row per account (balance, status, versions) and one per
/// movement of its balance, from `BankAccount` events.
struct AccountsProjection: ReadModelProjection {
    let name = "accounts"
    let tables = [
        ReadModelTable("accounts", orderBy: "account_id", rebuildIndexes: .secondaryAfterLoading),
        ReadModelTable("account_transactions", orderBy: "account_id, version", rebuildIndexes: .allAfterLoading),
    ]
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
        // Moves first: most events are, and each case tried is a dynamic cast.
        switch event {
        case let deposited as FundsDeposited:
            try move(deposited.accountId, by: deposited.amount, kind: "DEPOSIT", stored, db, fold)
        case let withdrawn as FundsWithdrawn:
            try move(withdrawn.accountId, by: withdrawn.amount, kind: "WITHDRAWAL", stored, db, fold)
        case let opened as AccountOpened:
            if let fold {
                try fold.open(opened, stored, db)
                try record(opened.accountId, "OPENING_BALANCE", opened.openingBalance, after: opened.openingBalance.amountMinor, stored, db)
                return
            }
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
        // The account's place in the fold, found once: read here and written below through it
        // (a hash of the id per event instead of three). An account the fold holds is there,
        // so only one it does not hold may be known absent.
        let index = fold?.accounts.index(forKey: accountId)
        let folded = index.flatMap { fold?.accounts.values[$0] }
        guard folded != nil || fold?.absent.contains(accountId) != true,
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
            let account = AccountFold.Account(
                balance: after, currency: currency, updatedAt: event.recordedAt, version: event.streamVersion, position: event.position,
                opened: folded?.opened)
            if let index { fold.accounts.values[index] = account } else { fold.accounts[accountId] = account }
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

/// The accounts a batch opened or moved money in, held in memory and written back once at its end.
///
/// Why: a rebuild page, or a partition's fetched batch, often opens an account and moves it many
/// times; folded here, each event costs one INSERT (its transaction row, which a networked engine
/// sends with the others in one statement) instead of an insert, a read and an update each, and
/// on PostgreSQL a round trip each (a rebuild of 200,000 events made 40,000 of them). Used only
/// where a failure rolls the whole batch back (the writer's first, savepoint-free attempt at a
/// batch), so the fold and the rows can never disagree after a commit.
final class AccountFold: ProjectionBatch {
    struct Account {
        var balance: Int64
        var currency: String
        var updatedAt: Int64
        var version: Int64
        var position: Int64
        /// Set for an account this batch opened: its row is inserted at the end, not updated.
        var opened: Opening?
        /// Changed since read or last written.
        var dirty = true
    }

    /// Accounts held beyond this many are forgotten at a flush (a carried fold's memory stays
    /// bounded; they are read again when next moved).
    static let heldLimit = 100_000

    /// What an account's row holds from its opening on.
    struct Opening {
        var holder: String
        var accountType: String
        var openedAt: Int64
    }

    var accounts: [String: Account] = [:]
    /// Accounts the batch's events name that the models do not hold (read up front): an opening
    /// of one needs no check, a move of one fails without a read.
    var absent: Set<String> = []

    /// Reads the rows of the accounts `events` open or move, a few hundred per statement, so a
    /// batch reads each once up front instead of at its first event. A rebuild's carried fold
    /// still asks for the accounts it has not seen, which its fresh tables cannot hold: telling
    /// the fold so would save those statements (two a transaction in the benchmark's history).
    func prefetch(_ events: [DecodedEvent], from db: any ReadModelDatabase) throws {
        var ids: [String] = []
        // Only the ids it neither holds nor knows to be absent (a carried fold holds most).
        var seen = Set<String>()
        func unseen(_ id: String) -> Bool { accounts[id] == nil && !absent.contains(id) && seen.insert(id).inserted }
        // An account's events come in runs (its stream's, in a history or a partition): the id
        // just looked at is compared first, which costs less than hashing it again.
        var previous = ""
        for index in events.indices {
            // The commonest type first, and one cast an event: a `where` that fails would go on
            // to try the cases after it.
            let id: String
            switch try? events[index].decoded.get() {
            case let deposited as FundsDeposited: id = deposited.accountId
            case let withdrawn as FundsWithdrawn: id = withdrawn.accountId
            case let opened as AccountOpened: id = opened.accountId
            default: continue
            }
            guard id != previous else { continue }
            previous = id
            if unseen(id) { ids.append(id) }
        }
        absent.formUnion(ids)
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(start + 500, ids.count)])
            let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            for (id, account) in try db.query(
                "SELECT account_id, balance_minor, currency, updated_at, version, position FROM accounts WHERE account_id IN (\(placeholders))",
                chunk.map { .text($0) },
                row: {
                    (
                        $0.text(0),
                        Account(
                            balance: $0.int64(1), currency: $0.text(2), updatedAt: $0.int64(3), version: $0.int64(4), position: $0.int64(5),
                            dirty: false)
                    )
                })
            {
                accounts[id] = account
                absent.remove(id)
            }
        }
    }

    /// Opens an account in memory; its row is inserted at the end of the batch.
    func open(_ opened: AccountOpened, _ event: ProjectedEvent, _ db: any ReadModelDatabase) throws {
        let id = opened.accountId
        let known =
            absent.contains(id)
            ? false : try accounts[id] != nil || db.first("SELECT 1 FROM accounts WHERE account_id = ?", .text(id)) { _ in true } != nil
        guard !known else { throw ProjectionError("account \(id) is already open") }
        absent.remove(id)
        accounts[id] = Account(
            balance: opened.openingBalance.amountMinor, currency: opened.openingBalance.currency, updatedAt: event.recordedAt,
            version: event.streamVersion, position: event.position,
            opened: Opening(holder: opened.holder, accountType: opened.accountType.rawValue, openedAt: event.recordedAt))
    }

    /// Writes every changed account back to its row, a few hundred per statement: the batch's
    /// openings inserted, the others updated. The accounts stay held as written (clean), for a
    /// carried fold's next batch (`ProjectionBatch`).
    func flush(to db: any ReadModelDatabase) throws {
        let folded = accounts.filter(\.value.dirty).sorted { $0.key < $1.key }
        if accounts.count > Self.heldLimit {
            accounts = [:]
            absent = []
        }
        var updated: [(String, Account)] = []
        for (id, account) in folded {
            if account.opened != nil { try write(id, account, to: db) } else { updated.append((id, account)) }
            if accounts[id] != nil {
                accounts[id]?.opened = nil
                accounts[id]?.dirty = false
            }
        }
        for start in stride(from: 0, to: updated.count, by: 200) {
            let chunk = updated[start..<min(start + 200, updated.count)]
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
        guard let account = accounts.removeValue(forKey: accountId), account.dirty else { return }
        try write(accountId, account, to: db)
    }

    private func write(_ accountId: String, _ account: Account, to db: any ReadModelDatabase) throws {
        if let opened = account.opened {
            try db.insert(
                """
                INSERT INTO accounts(account_id, holder, holder_key, account_type, balance_minor, currency, status,
                    opened_at, updated_at, version, position)
                VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                .text(accountId), .text(opened.holder), .text(Projector.key(opened.holder)), .text(opened.accountType),
                .integer(account.balance), .text(account.currency), .text("OPEN"), .integer(opened.openedAt), .integer(account.updatedAt),
                .integer(account.version), .integer(account.position))
            return
        }
        try db.run(
            "UPDATE accounts SET balance_minor = ?, updated_at = ?, version = ?, position = ? WHERE account_id = ?",
            .integer(account.balance), .integer(account.updatedAt), .integer(account.version), .integer(account.position),
            .text(accountId))
    }
}
