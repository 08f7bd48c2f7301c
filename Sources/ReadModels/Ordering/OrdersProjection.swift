import Domain
import SQLite

/// The orders' read side: one row per order, and per customer (by lower-cased email) the order
/// count, first and latest order, from `OrderPlaced` events.
struct OrdersProjection: ReadModelProjection {
    let name = "orders"
    let tables = [
        ReadModelTable("orders", orderBy: "order_id", rebuildIndexes: .secondaryAfterLoading), ReadModelTable("customers", orderBy: "email_key"),
    ]
    let eventTypes: Set<String> = [OrderPlaced.eventType]

    let migrations = [
        ReadModelMigration(version: 1) { sql in
            """
            CREATE TABLE IF NOT EXISTS \(sql.table("orders"))(
                order_id TEXT PRIMARY KEY, customer_email TEXT NOT NULL, customer_key TEXT NOT NULL, first_name TEXT NOT NULL,
                last_name TEXT NOT NULL, description TEXT NOT NULL, quantity \(sql.int64) NOT NULL, created_at \(sql.int64) NOT NULL,
                position \(sql.int64) NOT NULL
            ) \(sql.withoutRowID);
            CREATE INDEX IF NOT EXISTS orders_by_position ON \(sql.table("orders"))(position);
            CREATE INDEX IF NOT EXISTS orders_by_customer ON \(sql.table("orders"))(customer_key, position);
            CREATE TABLE IF NOT EXISTS \(sql.table("customers"))(
                email_key TEXT PRIMARY KEY, email TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                order_count \(sql.int64) NOT NULL, first_order_at \(sql.int64) NOT NULL, last_order_at \(sql.int64) NOT NULL,
                first_position \(sql.int64) NOT NULL, last_position \(sql.int64) NOT NULL
            ) \(sql.withoutRowID);
            """
        }
    ]

    func apply(_ event: any DomainEvent, _ stored: ProjectedEvent, to db: any ReadModelDatabase, batch: (any ProjectionBatch)?) throws {
        guard let placed = event as? OrderPlaced else { throw ProjectionError("the orders do not take \(stored.type) events") }
        let customer = placed.customer
        let changed = try db.run(
            """
            INSERT INTO orders(order_id, customer_email, customer_key, first_name, last_name, description, quantity,
                created_at, position)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            .text(placed.orderId), .text(customer.email), .text(Projector.key(customer.email)), .text(customer.firstName),
            .text(customer.lastName), .text(placed.description), .integer(Int64(placed.quantity)), .integer(stored.recordedAt),
            .integer(stored.position))
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
            .text(Projector.key(customer.email)), .text(customer.email), .text(customer.firstName), .text(customer.lastName),
            .integer(stored.recordedAt), .integer(stored.position))
    }
}
