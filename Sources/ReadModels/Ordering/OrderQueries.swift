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

extension ReadModelStore {
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
}
