import JSONCoding

// The events' stored JSON, read and written straight into their fields.
//
// Why not Codable alone: rebuilding the read models decodes every event ever stored, and the
// command side encodes each new one; through JSONDecoder/JSONEncoder that was the largest single
// cost of a rebuild. The shape is exactly Codable's (the same member names, keys in sorted order
// as the registry's encoder writes them), so events stored by either read back with either; the
// `Codable` conformances stay for everything else. Unknown members are skipped, as Codable does.

/// Reads the members of one JSON object, then checks the required ones were there.
enum EventObjectReader {
    /// Calls `member` for each member; it returns the member's index in the type's list of
    /// required members, or nil for a name it does not know (skipped). Returns the indexes seen,
    /// as bits (a Set of names cost more than the rest of the reading).
    static func read(_ scanner: inout JSONScanner, _ member: (inout JSONScanner, JSONKey) throws -> Int?) throws -> UInt32 {
        var seen: UInt32 = 0
        try scanner.fields { scanner, name in
            if let index = try scanner.member(name, { try member(&$0, name) }) { seen |= 1 << index } else { try scanner.skipValue() }
        }
        return seen
    }

    /// Throws naming the first of `names` (indexed as `read`'s results) that was missing.
    static func require(_ names: [StaticString], in seen: UInt32, _ scanner: JSONScanner) throws {
        for (index, name) in names.enumerated() where seen & (1 << index) == 0 {
            throw scanner.failure("missing required field '\(name)'")
        }
    }
}

extension Money: JSONMessage {
    /// The members its stored JSON must have, in the order `EventObjectReader` numbers them
    /// (made once, not on every decode).
    static let requiredMembers: [StaticString] = ["amountMinor", "currency"]

    public init(json scanner: inout JSONScanner) throws {
        var amountMinor: Int64 = 0, currency = ""
        let seen = try EventObjectReader.read(&scanner) { scanner, name in
            switch name {
            case "amountMinor":
                amountMinor = try scanner.integer()
                return 0
            case "currency":
                currency = try scanner.string()
                return 1
            default: return nil
            }
        }
        try EventObjectReader.require(Self.requiredMembers, in: seen, scanner)
        self.init(amountMinor: amountMinor, currency: currency)
    }

    public func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("amountMinor")
        writer.integer(amountMinor)
        writer.comma()
        writer.key("currency")
        writer.string(currency)
        writer.comma()
        writer.endObject()
    }
}

extension AccountOpened: JSONMessage {
    /// The members its stored JSON must have, in the order `EventObjectReader` numbers them
    /// (made once, not on every decode).
    static let requiredMembers: [StaticString] = ["accountId", "accountType", "holder", "openingBalance"]

    public init(json scanner: inout JSONScanner) throws {
        var accountId = "", holder = "", accountType = AccountType.current, openingBalance = Money.zero("")
        let seen = try EventObjectReader.read(&scanner) { scanner, name in
            switch name {
            case "accountId":
                accountId = try scanner.string()
                return 0
            case "accountType":
                let text = try scanner.string()
                guard let type = AccountType(rawValue: text) else { throw scanner.failure("unknown account type '\(text)'") }
                accountType = type
                return 1
            case "holder":
                holder = try scanner.string()
                return 2
            case "openingBalance":
                openingBalance = try Money(json: &scanner)
                return 3
            default: return nil
            }
        }
        try EventObjectReader.require(Self.requiredMembers, in: seen, scanner)
        self.init(accountId: accountId, holder: holder, accountType: accountType, openingBalance: openingBalance)
    }

    public func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("accountId")
        writer.string(accountId)
        writer.comma()
        writer.key("accountType")
        writer.string(accountType.rawValue)
        writer.comma()
        writer.key("holder")
        writer.string(holder)
        writer.comma()
        writer.key("openingBalance")
        openingBalance.writeJSON(to: &writer)
        writer.comma()
        writer.endObject()
    }
}

/// The two events that move money have one shape.
/// The members of a deposit or withdrawal, numbered as `EventObjectReader` reads them.
private let movementMembers: [StaticString] = ["accountId", "amount"]

private func readMovement(_ scanner: inout JSONScanner) throws -> (accountId: String, amount: Money) {
    var accountId = "", amount = Money.zero("")
    let seen = try EventObjectReader.read(&scanner) { scanner, name in
        switch name {
        case "accountId":
            accountId = try scanner.string()
            return 0
        case "amount":
            amount = try Money(json: &scanner)
            return 1
        default: return nil
        }
    }
    try EventObjectReader.require(movementMembers, in: seen, scanner)
    return (accountId, amount)
}

private func writeMovement(_ accountId: String, _ amount: Money, to writer: inout JSONWriter) {
    writer.beginObject()
    writer.key("accountId")
    writer.string(accountId)
    writer.comma()
    writer.key("amount")
    amount.writeJSON(to: &writer)
    writer.comma()
    writer.endObject()
}

extension FundsDeposited: JSONMessage {
    public init(json scanner: inout JSONScanner) throws {
        let (accountId, amount) = try readMovement(&scanner)
        self.init(accountId: accountId, amount: amount)
    }

    public func writeJSON(to writer: inout JSONWriter) { writeMovement(accountId, amount, to: &writer) }
}

extension FundsWithdrawn: JSONMessage {
    public init(json scanner: inout JSONScanner) throws {
        let (accountId, amount) = try readMovement(&scanner)
        self.init(accountId: accountId, amount: amount)
    }

    public func writeJSON(to writer: inout JSONWriter) { writeMovement(accountId, amount, to: &writer) }
}

extension AccountClosed: JSONMessage {
    /// The members its stored JSON must have, in the order `EventObjectReader` numbers them
    /// (made once, not on every decode).
    static let requiredMembers: [StaticString] = ["accountId"]

    public init(json scanner: inout JSONScanner) throws {
        var accountId = ""
        let seen = try EventObjectReader.read(&scanner) { scanner, name in
            guard name == "accountId" else { return nil }
            accountId = try scanner.string()
            return 0
        }
        try EventObjectReader.require(Self.requiredMembers, in: seen, scanner)
        self.init(accountId: accountId)
    }

    public func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("accountId")
        writer.string(accountId)
        writer.comma()
        writer.endObject()
    }
}

extension OrderPlaced: JSONMessage {
    /// The members its stored JSON must have (schema version 2: the customer flat), in the order
    /// `EventObjectReader` numbers them (made once, not on every decode).
    static let requiredMembers: [StaticString] = ["description", "email", "firstName", "lastName", "orderId", "quantity"]

    public init(json scanner: inout JSONScanner) throws {
        var orderId = "", email = "", firstName = "", lastName = "", description = "", quantity = 0
        let seen = try EventObjectReader.read(&scanner) { scanner, name in
            switch name {
            case "description":
                description = try scanner.string()
                return 0
            case "email":
                email = try scanner.string()
                return 1
            case "firstName":
                firstName = try scanner.string()
                return 2
            case "lastName":
                lastName = try scanner.string()
                return 3
            case "orderId":
                orderId = try scanner.string()
                return 4
            case "quantity":
                quantity = try scanner.int()
                return 5
            default: return nil
            }
        }
        try EventObjectReader.require(Self.requiredMembers, in: seen, scanner)
        self.init(
            orderId: orderId, customer: Customer(email: email, firstName: firstName, lastName: lastName), description: description,
            quantity: quantity)
    }

    public func writeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("description")
        writer.string(description)
        writer.comma()
        writer.key("email")
        writer.string(customer.email)
        writer.comma()
        writer.key("firstName")
        writer.string(customer.firstName)
        writer.comma()
        writer.key("lastName")
        writer.string(customer.lastName)
        writer.comma()
        writer.key("orderId")
        writer.string(orderId)
        writer.comma()
        writer.key("quantity")
        writer.int(quantity)
        writer.comma()
        writer.endObject()
    }
}
