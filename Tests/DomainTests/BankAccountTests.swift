import Testing

@testable import Domain

let now = DecisionContext(nowMs: 1_763_899_200_000)
func eur(_ minor: Int64) -> Money { Money(amountMinor: minor, currency: "EUR") }

/// An account opened with `opening` and then given `events`.
func account(opening: Int64 = 10_000, _ events: [any DomainEvent] = []) -> BankAccount {
    BankAccount().applying([AccountOpened(accountId: "a1", holder: "Ada", accountType: .current, openingBalance: eur(opening))] + events)
}

func refusal(_ body: () throws -> [any DomainEvent]) -> DomainError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? DomainError
    }
}

@Suite struct BankAccountTests {
    @Test func foldingEventsGivesTheBalanceAndStatus() {
        let state = account(
            opening: 1000,
            [
                FundsDeposited(accountId: "a1", amount: eur(250)), FundsWithdrawn(accountId: "a1", amount: eur(100)),
            ])
        #expect(state.isOpen && !state.isClosed)
        #expect(state.balance == eur(1150))
        #expect(state.holder == "Ada")
        #expect(account([AccountClosed(accountId: "a1")]).isClosed)
    }

    @Test func openingDecidesAccountOpened() throws {
        let command = OpenAccount(accountId: "a1", holder: "Ada", accountType: .savings, openingBalance: eur(0))
        #expect(command.validate().isEmpty)
        let events = try command.decide(BankAccount(), context: now)
        #expect(events as? [AccountOpened] == [AccountOpened(accountId: "a1", holder: "Ada", accountType: .savings, openingBalance: eur(0))])
    }

    @Test func openingValidatesEveryField() {
        let command = OpenAccount(accountId: "-bad id", holder: "  ", accountType: .current, openingBalance: Money(amountMinor: -1, currency: "eur"))
        #expect(Set(command.validate().map(\.field)) == ["accountId", "holder", "openingBalance.currency", "openingBalance.amountMinor"])
    }

    @Test func depositsAndWithdrawalsNeedAPositiveAmount() {
        for amount: Int64 in [0, -5] {
            #expect(DepositFunds(accountId: "a1", amount: eur(amount)).validate().map(\.field) == ["amount.amountMinor"])
            #expect(WithdrawFunds(accountId: "a1", amount: eur(amount)).validate().map(\.field) == ["amount.amountMinor"])
        }
        #expect(DepositFunds(accountId: "a1", amount: eur(1)).validate().isEmpty)
    }

    @Test func depositDecidesFundsDeposited() throws {
        let events = try DepositFunds(accountId: "a1", amount: eur(250)).decide(account(), context: now)
        #expect(events as? [FundsDeposited] == [FundsDeposited(accountId: "a1", amount: eur(250))])
    }

    @Test func withdrawingUpToTheBalanceIsAllowedAndBeyondItIsRefused() throws {
        let state = account(opening: 1000)
        #expect(try WithdrawFunds(accountId: "a1", amount: eur(1000)).decide(state, context: now).count == 1)
        let error = refusal { try WithdrawFunds(accountId: "a1", amount: eur(1001)).decide(state, context: now) }
        guard case .ruleBroken(let reason)? = error else {
            Issue.record("expected a broken rule, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("insufficient funds"))
    }

    @Test func aClosedAccountTakesNoDepositWithdrawalOrSecondClose() {
        let closed = account([AccountClosed(accountId: "a1")])
        let commands: [(BankAccount) throws -> [any DomainEvent]] = [
            { state in try DepositFunds(accountId: "a1", amount: eur(1)).decide(state, context: now) },
            { state in try WithdrawFunds(accountId: "a1", amount: eur(1)).decide(state, context: now) },
            { state in try CloseAccount(accountId: "a1").decide(state, context: now) },
        ]
        for command in commands {
            #expect(refusal { try command(closed) } == .ruleBroken("the account is closed"))
        }
    }

    @Test func anotherCurrencyIsRefused() {
        let error = refusal {
            try DepositFunds(accountId: "a1", amount: Money(amountMinor: 5, currency: "USD")).decide(account(), context: now)
        }
        #expect(error == .ruleBroken("the account holds EUR, not USD"))
    }

    @Test func aDepositThatWouldOverflowTheBalanceIsRefused() {
        let error = refusal {
            try DepositFunds(accountId: "a1", amount: eur(Int64.max)).decide(account(opening: 1), context: now)
        }
        #expect(error != nil)
    }

    @Test func closingAnOpenAccountWithNothingInItDecidesAccountClosed() throws {
        let emptied = account(opening: 300, [FundsWithdrawn(accountId: "a1", amount: eur(300))])
        #expect(try CloseAccount(accountId: "a1").decide(emptied, context: now) as? [AccountClosed] == [AccountClosed(accountId: "a1")])
    }

    @Test func anAccountHoldingMoneyIsNotClosed() {
        #expect(
            refusal { try CloseAccount(accountId: "a1").decide(account(opening: 10_000), context: now) }
                == .ruleBroken("the balance is 10000 EUR minor units: withdraw it before closing the account"))
    }
}

@Suite struct OrderTests {
    let customer = Customer(email: "ada@example.com", firstName: "Ada", lastName: "Lovelace")

    @Test func placingDecidesOrderPlacedOnTheOnNewOrderTopic() throws {
        let command = PlaceOrder(orderId: "o1", customer: customer, description: "cards", quantity: 2)
        #expect(command.validate().isEmpty)
        let events = try command.decide(Order(), context: now)
        #expect(events as? [OrderPlaced] == [OrderPlaced(orderId: "o1", customer: customer, description: "cards", quantity: 2)])
        #expect(Order.topic == "OnNewOrder")
        #expect(Order().applying(events).isPlaced)
    }

    @Test func placingValidatesEveryField() {
        let bad = PlaceOrder(orderId: "o1", customer: Customer(email: "not-an-email", firstName: "", lastName: "L"), description: "", quantity: 0)
        #expect(Set(bad.validate().map(\.field)) == ["customer.email", "customer.firstName", "description", "quantity"])
        for email in ["a@b", "@b.com", "a b@c.com", "a@b.com."] { #expect(!Customer.isEmail(email), "\(email)") }
        for email in ["a@b.co", "first.last+tag@example.org"] { #expect(Customer.isEmail(email), "\(email)") }
    }
}

@Suite struct EventTypeRegistryTests {
    @Test func encodedEventsDecodeBackToTheSameEvent() throws {
        let events: [any DomainEvent] = [
            AccountOpened(accountId: "a1", holder: "Ada", accountType: .current, openingBalance: eur(5)),
            FundsDeposited(accountId: "a1", amount: eur(7)),
            OrderPlaced(orderId: "o1", customer: Customer(email: "a@b.co", firstName: "A", lastName: "B"), description: "d", quantity: 1),
        ]
        for event in events {
            let encoded = try EventTypeRegistry.encode(event)
            let decoded = try Domains.registry.decode(type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data)
            #expect(encoded.type == type(of: event).eventType)
            #expect(String(describing: decoded) == String(describing: event))
        }
    }

    @Test func unknownTypesAndNewerSchemasAreErrorsNotGuesses() {
        #expect(throws: EventDecodingError.self) { try Domains.registry.decode(type: "Nope", schemaVersion: 1, data: Array("{}".utf8)) }
        #expect(throws: EventDecodingError.self) {
            try Domains.registry.decode(type: "AccountClosed", schemaVersion: 2, data: Array(#"{"accountId":"a"}"#.utf8))
        }
        #expect(throws: EventDecodingError.self) { try Domains.registry.decode(type: "AccountClosed", schemaVersion: 1, data: Array("{}".utf8)) }
    }

    @Test func moneyIsStoredAsIntegerMinorUnits() throws {
        let encoded = try EventTypeRegistry.encode(FundsDeposited(accountId: "a1", amount: eur(1050)))
        #expect(String(decoding: encoded.data, as: UTF8.self) == #"{"accountId":"a1","amount":{"amountMinor":1050,"currency":"EUR"}}"#)
    }

    @Test func streamIdsSplitAtTheFirstDash() {
        #expect(BankAccount.streamId("a-1") == "BankAccount-a-1")
        #expect(splitStreamId("BankAccount-a-1")! == ("BankAccount", "a-1"))
        #expect(splitStreamId("nodash") == nil)
        #expect(Domains.topics == ["BankAccount": "BankAccount", "Order": "OnNewOrder", "Job": "job", "Application": "application"])
    }
}
