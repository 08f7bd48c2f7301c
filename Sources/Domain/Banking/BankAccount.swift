// Bank accounts: open, deposit, withdraw, close. Balances in integer minor units.

public enum AccountType: String, Codable, Sendable, CaseIterable {
    case savings = "SAVINGS"
    case current = "CURRENT"
}

// MARK: Events

public struct AccountOpened: DomainEvent {
    public static let eventType = "AccountOpened"
    public var accountId: String
    public var holder: String
    public var accountType: AccountType
    public var openingBalance: Money

    public init(accountId: String, holder: String, accountType: AccountType, openingBalance: Money) {
        self.accountId = accountId
        self.holder = holder
        self.accountType = accountType
        self.openingBalance = openingBalance
    }
}

public struct FundsDeposited: DomainEvent {
    public static let eventType = "FundsDeposited"
    public var accountId: String
    public var amount: Money

    public init(accountId: String, amount: Money) {
        self.accountId = accountId
        self.amount = amount
    }
}

public struct FundsWithdrawn: DomainEvent {
    public static let eventType = "FundsWithdrawn"
    public var accountId: String
    public var amount: Money

    public init(accountId: String, amount: Money) {
        self.accountId = accountId
        self.amount = amount
    }
}

public struct AccountClosed: DomainEvent {
    public static let eventType = "AccountClosed"
    public var accountId: String

    public init(accountId: String) { self.accountId = accountId }
}

// MARK: State

/// A bank account as its events leave it.
public struct BankAccount: Aggregate, Hashable {
    public static let category = "BankAccount"
    public static let eventTypes: [any DomainEvent.Type] = [
        AccountOpened.self, FundsDeposited.self, FundsWithdrawn.self, AccountClosed.self,
    ]

    public var isOpen = false
    public var isClosed = false
    public var holder = ""
    public var accountType = AccountType.current
    public var balance = Money.zero("XXX")

    public init() {}

    public mutating func apply(_ event: any DomainEvent) {
        switch event {
        case let opened as AccountOpened:
            isOpen = true
            holder = opened.holder
            accountType = opened.accountType
            balance = opened.openingBalance
        case let deposited as FundsDeposited:
            balance.amountMinor += deposited.amount.amountMinor
        case let withdrawn as FundsWithdrawn:
            balance.amountMinor -= withdrawn.amount.amountMinor
        case is AccountClosed:
            isClosed = true
        default:
            break
        }
    }

    /// The rules a deposit and a withdrawal share: a well-formed account id and an amount above zero.
    static func checkMovement(accountId: String, amount: Money) -> [Violation] {
        var violations: [Violation] = []
        Rules.checkId(accountId, field: "accountId", into: &violations)
        amount.check(field: "amount", positive: true, into: &violations)
        return violations
    }

    /// Refuses anything but an open, not closed account in `amount`'s currency.
    func checkUsable(for amount: Money?) throws(DomainError) {
        guard isOpen else { throw .ruleBroken("the account is not open") }
        guard !isClosed else { throw .ruleBroken("the account is closed") }
        if let amount, amount.currency != balance.currency {
            throw .ruleBroken("the account holds \(balance.currency), not \(amount.currency)")
        }
    }
}

// MARK: Commands

public struct OpenAccount: AggregateCommand {
    public typealias Target = BankAccount
    public static let expectation = StreamExpectation.new
    public var aggregateId: String
    public var holder: String
    public var accountType: AccountType
    public var openingBalance: Money

    public init(accountId: String, holder: String, accountType: AccountType, openingBalance: Money) {
        self.aggregateId = accountId
        self.holder = holder
        self.accountType = accountType
        self.openingBalance = openingBalance
    }

    public func validate() -> [Violation] {
        var violations: [Violation] = []
        Rules.checkId(aggregateId, field: "accountId", into: &violations)
        Rules.checkText(holder, field: "holder", maxLength: 200, into: &violations)
        openingBalance.check(field: "openingBalance", positive: false, into: &violations)
        return violations
    }

    public func decide(_ state: BankAccount, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        [AccountOpened(accountId: aggregateId, holder: holder, accountType: accountType, openingBalance: openingBalance)]
    }
}

public struct DepositFunds: AggregateCommand {
    public typealias Target = BankAccount
    public static let expectation = StreamExpectation.existing
    public var aggregateId: String
    public var amount: Money

    public init(accountId: String, amount: Money) {
        self.aggregateId = accountId
        self.amount = amount
    }

    public func validate() -> [Violation] { BankAccount.checkMovement(accountId: aggregateId, amount: amount) }

    public func decide(_ state: BankAccount, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        try state.checkUsable(for: amount)
        guard !state.balance.amountMinor.addingReportingOverflow(amount.amountMinor).overflow else {
            throw .ruleBroken("the balance would exceed the largest amount an account can hold")
        }
        return [FundsDeposited(accountId: aggregateId, amount: amount)]
    }
}

public struct WithdrawFunds: AggregateCommand {
    public typealias Target = BankAccount
    public static let expectation = StreamExpectation.existing
    public var aggregateId: String
    public var amount: Money

    public init(accountId: String, amount: Money) {
        self.aggregateId = accountId
        self.amount = amount
    }

    public func validate() -> [Violation] { BankAccount.checkMovement(accountId: aggregateId, amount: amount) }

    public func decide(_ state: BankAccount, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        try state.checkUsable(for: amount)
        guard amount.amountMinor <= state.balance.amountMinor else {
            throw .ruleBroken(
                "insufficient funds: the balance is \(state.balance.amountMinor) and \(amount.amountMinor) was asked (\(amount.currency) minor units)"
            )
        }
        return [FundsWithdrawn(accountId: aggregateId, amount: amount)]
    }
}

public struct CloseAccount: AggregateCommand {
    public typealias Target = BankAccount
    public static let expectation = StreamExpectation.existing
    public var aggregateId: String

    public init(accountId: String) { self.aggregateId = accountId }

    public func validate() -> [Violation] {
        var violations: [Violation] = []
        Rules.checkId(aggregateId, field: "accountId", into: &violations)
        return violations
    }

    /// A bank does not close an account that still holds money (or owes it): the balance must be
    /// withdrawn to zero first, so closing never makes money disappear from the books.
    public func decide(_ state: BankAccount, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        try state.checkUsable(for: nil)
        guard state.balance.amountMinor == 0 else {
            throw .ruleBroken(
                "the balance is \(state.balance.amountMinor) \(state.balance.currency) minor units: withdraw it before closing the account")
        }
        return [AccountClosed(accountId: aggregateId)]
    }
}
