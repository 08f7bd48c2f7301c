// Orders: a customer, identified by email, places an order. Published on `OnNewOrder`, keyed by
// order id, as the order demo people know reads it.

public struct Customer: Codable, Hashable, Sendable {
    public var email: String
    public var firstName: String
    public var lastName: String

    public init(email: String, firstName: String, lastName: String) {
        self.email = email
        self.firstName = firstName
        self.lastName = lastName
    }

    /// One `@` with text on both sides, a dot in the domain, no spaces, at most 254 characters:
    /// the checks that catch typos without rejecting real addresses.
    public static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, text.utf8.count <= 254 else { return false }
        let domain = parts[1]
        return domain.contains(".") && !domain.hasPrefix(".") && !domain.hasSuffix(".") && !text.contains(where: \.isWhitespace)
    }
}

public struct OrderPlaced: DomainEvent {
    public static let eventType = "OrderPlaced"
    public var orderId: String
    public var customer: Customer
    public var description: String
    public var quantity: Int

    public init(orderId: String, customer: Customer, description: String, quantity: Int) {
        self.orderId = orderId
        self.customer = customer
        self.description = description
        self.quantity = quantity
    }
}

/// An order as its events leave it.
public struct Order: Aggregate, Hashable {
    public static let category = "Order"
    public static let topic = "OnNewOrder"
    public static let eventTypes: [any DomainEvent.Type] = [OrderPlaced.self]

    public var isPlaced = false
    public var customerEmail = ""
    public var quantity = 0

    public init() {}

    public mutating func apply(_ event: any DomainEvent) {
        if let placed = event as? OrderPlaced {
            isPlaced = true
            customerEmail = placed.customer.email
            quantity = placed.quantity
        }
    }
}

public struct PlaceOrder: AggregateCommand {
    public typealias Target = Order
    public static let expectation = StreamExpectation.new
    public static let maxQuantity = 1_000_000
    public var aggregateId: String
    public var customer: Customer
    public var description: String
    public var quantity: Int

    public init(orderId: String, customer: Customer, description: String, quantity: Int) {
        self.aggregateId = orderId
        self.customer = customer
        self.description = description
        self.quantity = quantity
    }

    public func validate() -> [Violation] {
        var violations: [Violation] = []
        Rules.checkId(aggregateId, field: "orderId", into: &violations)
        if !Customer.isEmail(customer.email) { violations.append(Violation("customer.email", "must be an email address")) }
        Rules.checkText(customer.firstName, field: "customer.firstName", maxLength: 100, into: &violations)
        Rules.checkText(customer.lastName, field: "customer.lastName", maxLength: 100, into: &violations)
        Rules.checkText(description, field: "description", maxLength: 1000, into: &violations)
        if quantity <= 0 {
            violations.append(Violation("quantity", "must be greater than 0"))
        } else if quantity > Self.maxQuantity {
            violations.append(Violation("quantity", "must be at most \(Self.maxQuantity)"))
        }
        return violations
    }

    public func decide(_ state: Order, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        [OrderPlaced(orderId: aggregateId, customer: customer, description: description, quantity: quantity)]
    }
}
