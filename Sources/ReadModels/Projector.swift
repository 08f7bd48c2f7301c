import Domain
import SQLite

/// Applies one event to the read-model tables. It knows the domains' event types (through the
/// registry) and the tables; it knows nothing of partitions, offsets or parking.
struct Projector: Sendable {
    var registry = Domains.registry

    /// What an event changed, so watchers of it can be told.
    enum Change: Hashable {
        case account(String)
        case order(String)
    }

    /// Decodes an event's JSON into its domain type. Pure: a rebuild decodes the next page on
    /// another thread while this one is applied.
    func decode(_ event: ProjectedEvent) -> DecodedEvent {
        DecodedEvent(event: event, decoded: Result { try registry.decode(type: event.type, schemaVersion: event.schemaVersion, data: event.data) })
    }

    /// Applies `event`, or throws (and the caller undoes its partial changes) when the event
    /// cannot be decoded or does not fit the model.
    /// Applies one event's changes to the models. With `fold`, deposits and withdrawals change
    /// the fold's copy of the account instead of its row; the caller writes the fold back
    /// (`AccountFold.flush`) before its transaction commits.
    func apply(_ event: DecodedEvent, to db: any ReadModelDatabase, fold: AccountFold? = nil) throws -> Change? {
        let decoded = try event.decoded.get()
        let event = event.event
        switch decoded {
        case let opened as AccountOpened:
            let changed = try db.run(
                """
                INSERT INTO accounts(account_id, holder, holder_key, account_type, balance_minor, currency, status,
                    opened_at, updated_at, version, position)
                VALUES(?, ?, ?, ?, ?, ?, 'OPEN', ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                .text(opened.accountId), .text(opened.holder), .text(Self.key(opened.holder)), .text(opened.accountType.rawValue),
                .integer(opened.openingBalance.amountMinor), .text(opened.openingBalance.currency), .integer(event.recordedAt),
                .integer(event.recordedAt), .integer(event.streamVersion), .integer(event.position))
            guard changed == 1 else { throw ProjectionError("account \(opened.accountId) is already open") }
            try record(opened.accountId, "OPENING_BALANCE", opened.openingBalance, after: opened.openingBalance.amountMinor, event, db)
            return .account(opened.accountId)
        case let deposited as FundsDeposited:
            try move(deposited.accountId, by: deposited.amount, kind: "DEPOSIT", event, db, fold)
            return .account(deposited.accountId)
        case let withdrawn as FundsWithdrawn:
            try move(withdrawn.accountId, by: withdrawn.amount, kind: "WITHDRAWAL", event, db, fold)
            return .account(withdrawn.accountId)
        case let closed as AccountClosed:
            try fold?.flush(closed.accountId, to: db)
            let changed = try db.run(
                "UPDATE accounts SET status = 'CLOSED', updated_at = ?, version = ?, position = ? WHERE account_id = ?",
                .integer(event.recordedAt), .integer(event.streamVersion), .integer(event.position), .text(closed.accountId))
            guard changed == 1 else { throw ProjectionError("account \(closed.accountId) is not in the read model") }
            return .account(closed.accountId)
        case let placed as OrderPlaced:
            let customer = placed.customer
            let changed = try db.run(
                """
                INSERT INTO orders(order_id, customer_email, customer_key, first_name, last_name, description, quantity,
                    created_at, position)
                VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                .text(placed.orderId), .text(customer.email), .text(Self.key(customer.email)), .text(customer.firstName),
                .text(customer.lastName), .text(placed.description), .integer(Int64(placed.quantity)), .integer(event.recordedAt),
                .integer(event.position))
            guard changed == 1 else { throw ProjectionError("order \(placed.orderId) is already in the read model") }
            // Orders of one customer arrive from several partitions in any order: the first and
            // the latest order are decided by global position, never by arrival, so the live
            // model and a rebuild (which applies in position order) agree. The latest order's
            // email spelling and names win.
            try db.run(
                """
                INSERT INTO customers(email_key, email, first_name, last_name, order_count, first_order_at, last_order_at,
                    first_position, last_position)
                VALUES(?1, ?2, ?3, ?4, 1, ?5, ?5, ?6, ?6)
                ON CONFLICT(email_key) DO UPDATE SET
                    order_count = customers.order_count + 1,
                    first_order_at = CASE WHEN excluded.first_position < customers.first_position THEN excluded.first_order_at
                        ELSE customers.first_order_at END,
                    first_position = CASE WHEN excluded.first_position < customers.first_position THEN excluded.first_position
                        ELSE customers.first_position END,
                    email = CASE WHEN excluded.last_position > customers.last_position THEN excluded.email ELSE customers.email END,
                    first_name = CASE WHEN excluded.last_position > customers.last_position THEN excluded.first_name
                        ELSE customers.first_name END,
                    last_name = CASE WHEN excluded.last_position > customers.last_position THEN excluded.last_name
                        ELSE customers.last_name END,
                    last_order_at = CASE WHEN excluded.last_position > customers.last_position THEN excluded.last_order_at
                        ELSE customers.last_order_at END,
                    last_position = CASE WHEN excluded.last_position > customers.last_position THEN excluded.last_position
                        ELSE customers.last_position END
                """,
                .text(Self.key(customer.email)), .text(customer.email), .text(customer.firstName), .text(customer.lastName),
                .integer(event.recordedAt), .integer(event.position))
            return .order(placed.orderId)
        default:
            throw ProjectionError("no read model takes \(event.type) events")
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

    /// Case-insensitive lookup key (holders, emails).
    static func key(_ text: String) -> String { text.lowercased() }
}

/// The accounts a batch moved money in, held in memory and written back once at its end.
///
/// Why: a rebuild page, or a partition's fetched batch, often moves one account many times;
/// folded here, each deposit or withdrawal costs one INSERT (its transaction row, which a
/// networked engine sends with the others in one statement) instead of reading, updating and
/// inserting. Used only where a failure rolls the whole batch back (the writer's first,
/// savepoint-free attempt at a batch), so the fold and the rows can never disagree after a commit.
final class AccountFold {
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
    func prefetch(movedBy events: [DecodedEvent], from db: any ReadModelDatabase) throws {
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

/// An event with its JSON decoded (or the reason it could not be).
public struct DecodedEvent: Sendable {
    public var event: ProjectedEvent
    var decoded: Result<any DomainEvent, any Error>
}

/// An event that does not fit the read model (it is parked with this message).
struct ProjectionError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
