import JSONCoding

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

/// An order was placed.
///
/// Schema version 2 carries the customer flat (`email`, `firstName`, `lastName` beside
/// `orderId`), as simplecqrs's `OnNewOrder` message does, so consumers written for that message
/// read ours. Version 1 (stored until then) nested them under `customer`; its upcaster lifts them.
public struct OrderPlaced: DomainEvent {
    public static let eventType = "OrderPlaced"
    public static let schemaVersion = 2
    public static let upcasters = [EventUpcaster(from: 1, flattenCustomer)]
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

    enum CodingKeys: String, CodingKey {
        case orderId, email, firstName, lastName, description, quantity
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        orderId = try container.decode(String.self, forKey: .orderId)
        customer = Customer(
            email: try container.decode(String.self, forKey: .email), firstName: try container.decode(String.self, forKey: .firstName),
            lastName: try container.decode(String.self, forKey: .lastName))
        description = try container.decode(String.self, forKey: .description)
        quantity = try container.decode(Int.self, forKey: .quantity)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(orderId, forKey: .orderId)
        try container.encode(customer.email, forKey: .email)
        try container.encode(customer.firstName, forKey: .firstName)
        try container.encode(customer.lastName, forKey: .lastName)
        try container.encode(description, forKey: .description)
        try container.encode(quantity, forKey: .quantity)
    }

    /// Version 1 to 2: `{"customer": {"email", "firstName", "lastName"}, …}` becomes
    /// `{"email", "firstName", "lastName", …}`.
    @Sendable static func flattenCustomer(_ version1: JSONValue) throws -> JSONValue {
        var members = try version1.objectMembers("an OrderPlaced event")
        guard let customer = members.removeValue(forKey: "customer") else { throw UpcastError("version 1 of OrderPlaced has no customer") }
        let nested = try customer.objectMembers("its customer")
        for name in ["email", "firstName", "lastName"] {
            guard let value = nested[name] else { throw UpcastError("version 1 of OrderPlaced has no customer.\(name)") }
            members[name] = value
        }
        return .object(members)
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
