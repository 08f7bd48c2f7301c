import CommandHandling
import Domain
import EventStore
import Foundation
import Logging
import Synchronization
import Testing
import WallTime

func eur(_ minor: Int64) -> Money { Money(amountMinor: minor, currency: "EUR") }

/// The write side over an in-memory store, wired as the CommandService wires it.
struct WriteSide {
    let store: any EventStore
    let repository: AggregateRepository
    let mediator: Mediator

    init(store: any EventStore = InMemoryEventStore(), snapshotEvery: Int = 100) {
        self.store = store
        var options = AggregateRepository.Options()
        options.snapshotEvery = snapshotEvery
        repository = AggregateRepository(store: store, registry: Domains.registry, options: options)
        mediator = .commandSide(store: store, repository: repository, clock: ManualWallClock(1_763_899_200_000))
    }

    @discardableResult
    func send<C: AggregateCommand>(_ command: C, id: String = UUID().uuidString, expectedVersion: Int64? = nil) async throws -> CommandResult {
        try await mediator.send(
            command, context: CommandContext(commandId: id, correlationId: "corr", expectedVersion: expectedVersion, logger: Logger(label: "test")))
    }

    func open(_ id: String, balance: Int64 = 1000) async throws {
        try await send(OpenAccount(accountId: id, holder: "Ada", accountType: .current, openingBalance: eur(balance)))
    }

    func balance(_ id: String) async throws -> Int64 {
        try await repository.loadFromStore(BankAccount.self, streamId: BankAccount.streamId(id), useSnapshot: false).state.balance.amountMinor
    }
}

func commandError(_ body: () async throws -> Void) async -> CommandError? {
    do {
        try await body()
        return nil
    } catch {
        return error as? CommandError
    }
}

@Suite struct CommandHandlingTests {
    @Test func aCommandIsDecidedAppendedAndAnswersWithVersionAndPosition() async throws {
        let side = WriteSide()
        try await side.open("a1")
        let result = try await side.send(DepositFunds(accountId: "a1", amount: eur(250)))
        #expect(result == CommandResult(aggregateId: "a1", streamId: "BankAccount-a1", version: 2, position: 2, duplicate: false))
        let events = try await side.store.readStream("BankAccount-a1", fromVersion: 1, maxCount: 10)
        #expect(events.map(\.type) == ["AccountOpened", "FundsDeposited"])
        #expect(events.allSatisfy { $0.correlationId == "corr" })
        #expect(try await side.balance("a1") == 1250)
    }

    @Test func refusalsCarryTheirKind() async throws {
        let side = WriteSide()
        try await side.open("a1", balance: 100)
        let invalid = await commandError { try await side.send(DepositFunds(accountId: "a1", amount: eur(0))) }
        #expect(invalid == .invalid([Violation("amount.amountMinor", "must be greater than 0")]))
        #expect(await commandError { try await side.send(DepositFunds(accountId: "nobody", amount: eur(5))) } == .notFound("no BankAccount nobody"))
        #expect(await commandError { try await side.open("a1") } == .alreadyExists("BankAccount a1 exists"))
        guard case .ruleBroken? = await commandError({ try await side.send(WithdrawFunds(accountId: "a1", amount: eur(101))) }) else {
            Issue.record("an overdraft must be refused")
            return
        }
        #expect(try await side.store.headPosition() == 1, "refused commands append nothing")
    }

    /// A command whose type the sender knew (`send` of an `AggregateCommand`) and one sent
    /// where only `Sendable` is known are refused alike, before idempotency looks at its id.
    @Test func aMalformedCommandIsRefusedWhicheverWayItIsSent() async throws {
        let side = WriteSide()
        try await side.open("a1")
        try await side.send(DepositFunds(accountId: "a1", amount: eur(5)), id: "dep-1")
        let expected = CommandError.invalid([Violation("amount.amountMinor", "must be greater than 0")])
        func context(_ id: String) -> CommandContext { CommandContext(commandId: id, correlationId: "c", logger: Logger(label: "test")) }
        func sendErased<C: Sendable>(_ command: C, id: String) async throws {
            _ = try await side.mediator.send(command, context: context(id))
        }
        let malformed = DepositFunds(accountId: "a1", amount: eur(-3))
        #expect(await commandError { _ = try await side.mediator.send(malformed, context: context("dep-1")) } == expected)
        #expect(await commandError { try await sendErased(malformed, id: "dep-1") } == expected)
        #expect(await commandError { try await sendErased(malformed, id: "dep-2") } == expected)
        #expect(try await side.balance("a1") == 1005)
    }

    @Test func theSameCommandIdTwiceReturnsTheFirstResultAndAppendsOnce() async throws {
        let side = WriteSide()
        try await side.open("a1")
        let first = try await side.send(DepositFunds(accountId: "a1", amount: eur(5)), id: "dep-1")
        let again = try await side.send(DepositFunds(accountId: "a1", amount: eur(5)), id: "dep-1")
        #expect(
            again == CommandResult(aggregateId: "a1", streamId: first.streamId, version: first.version, position: first.position, duplicate: true))
        #expect(try await side.balance("a1") == 1005)
    }

    /// A retry is decided again, and its second decision may go another way; the answer is still
    /// the first one, and nothing more is appended.
    @Test func aRetryWhoseSecondDecisionGoesAnotherWayReturnsTheFirstResult() async throws {
        let side = WriteSide()
        try await side.open("a1", balance: 100)
        // Refused by the rules the second time: the first withdrawal emptied the account.
        let withdrawn = try await side.send(WithdrawFunds(accountId: "a1", amount: eur(80)), id: "w-1")
        let retried = try await side.send(WithdrawFunds(accountId: "a1", amount: eur(80)), id: "w-1")
        #expect(
            retried
                == CommandResult(
                    aggregateId: "a1", streamId: withdrawn.streamId, version: withdrawn.version, position: withdrawn.position, duplicate: true))
        // A conflict the second time: the caller's expected version has moved on.
        let deposited = try await side.send(DepositFunds(accountId: "a1", amount: eur(5)), id: "d-1", expectedVersion: 2)
        let again = try await side.send(DepositFunds(accountId: "a1", amount: eur(5)), id: "d-1", expectedVersion: 2)
        #expect(
            again
                == CommandResult(
                    aggregateId: "a1", streamId: deposited.streamId, version: deposited.version, position: deposited.position, duplicate: true))
        // Accepted the second time, on another stream: an account opened again under a new id.
        let opened = try await side.send(OpenAccount(accountId: "b1", holder: "Ada", accountType: .current, openingBalance: eur(1)), id: "o-1")
        let reopened = try await side.send(OpenAccount(accountId: "b2", holder: "Ada", accountType: .current, openingBalance: eur(1)), id: "o-1")
        #expect(reopened == CommandResult(aggregateId: "b1", streamId: opened.streamId, version: 1, position: opened.position, duplicate: true))
        #expect(try await side.store.readStream("BankAccount-b2", fromVersion: 1, maxCount: 10).isEmpty)
        #expect(try await side.store.headPosition() == 4)
        #expect(try await side.balance("a1") == 25)
    }

    @Test func copiesOfOneCommandRacingAppendOnce() async throws {
        let side = WriteSide(store: InMemoryEventStore())
        try await side.open("a1")
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for _ in 0..<20 { group.addTask { try await side.send(DepositFunds(accountId: "a1", amount: eur(7)), id: "same") } }
            return try await group.reduce(into: [CommandResult]()) { $0.append($1) }
        }
        #expect(results.filter { !$0.duplicate }.count == 1)
        #expect(try await side.balance("a1") == 1007)
    }

    @Test func aStaleExpectedVersionIsAConflictAndAppendsNothing() async throws {
        let side = WriteSide()
        try await side.open("a1")
        try await side.send(DepositFunds(accountId: "a1", amount: eur(5)), expectedVersion: 1)
        let conflict = await commandError { try await side.send(DepositFunds(accountId: "a1", amount: eur(5)), expectedVersion: 1) }
        #expect(conflict == .conflict(streamId: "BankAccount-a1", expected: 1, actual: 2))
        #expect(try await side.balance("a1") == 1005)
    }

    @Test func concurrentDepositsWithoutExpectedVersionsAllLand() async throws {
        // Two write sides over one store: each one's cache goes stale when the other writes, so
        // appends conflict and are decided again on fresh state.
        let store = InMemoryEventStore()
        let sides = [WriteSide(store: store), WriteSide(store: store)]
        try await sides[0].open("a1", balance: 0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 { group.addTask { try await sides[index % 2].send(DepositFunds(accountId: "a1", amount: eur(1))) } }
            try await group.waitForAll()
        }
        #expect(try await sides[0].balance("a1") == 40)
        #expect(try await store.streamVersion("BankAccount-a1") == 41)
    }

    @Test func aSnapshotPlusTheEventsAfterItGivesTheSameStateAsTheWholeStream() async throws {
        let side = WriteSide(snapshotEvery: 10)
        try await side.open("a1", balance: 0)
        for index in 1...24 {
            if index % 5 == 0 {
                try await side.send(WithdrawFunds(accountId: "a1", amount: eur(3)))
            } else {
                try await side.send(DepositFunds(accountId: "a1", amount: eur(Int64(index))))
            }
        }
        let snapshot = try await side.store.loadSnapshot("BankAccount-a1")
        #expect(snapshot?.version == 20)
        let fromSnapshot = try await side.repository.loadFromStore(BankAccount.self, streamId: "BankAccount-a1", useSnapshot: true)
        let fromEvents = try await side.repository.loadFromStore(BankAccount.self, streamId: "BankAccount-a1", useSnapshot: false)
        #expect(fromSnapshot.version == 25 && fromEvents.version == 25)
        #expect(fromSnapshot.state == fromEvents.state)
        #expect(fromEvents.state.balance == eur((1...24).filter { $0 % 5 != 0 }.reduce(0, +) - 4 * 3))
    }

    @Test func ordersArePlacedOnce() async throws {
        let side = WriteSide()
        let customer = Customer(email: "ada@example.com", firstName: "Ada", lastName: "Lovelace")
        let result = try await side.send(PlaceOrder(orderId: "o1", customer: customer, description: "cards", quantity: 2))
        #expect(result.streamId == "Order-o1")
        #expect(
            await commandError { try await side.send(PlaceOrder(orderId: "o1", customer: customer, description: "x", quantity: 1)) }
                == .alreadyExists("Order o1 exists"))
    }
}

/// The mediator's chain: behaviours in registration order (the first outermost), each handing the
/// next the context it chose; one may answer without calling `next`.
@Suite struct MediatorTests {
    /// Notes its name on the way in and out and appends it to the correlation id it passes on.
    struct Tagging: CommandBehaviour {
        let name: String
        let journal: Journals
        let answersItself: Bool

        func handle(
            _ command: any Sendable, context: CommandContext, next: @Sendable (CommandContext) async throws -> CommandResult
        ) async throws -> CommandResult {
            journal.entries.withLock { $0.append("in \(name)") }
            defer { journal.entries.withLock { $0.append("out \(name)") } }
            if answersItself { return CommandResult(aggregateId: name, streamId: "", version: 0, position: 0, duplicate: false) }
            var context = context
            context.correlationId += "/\(name)"
            return try await next(context)
        }
    }

    struct Echo: CommandHandler {
        typealias Command = String
        func handle(_ command: String, context: CommandContext) async throws -> CommandResult {
            CommandResult(aggregateId: command, streamId: context.correlationId, version: 1, position: 1, duplicate: false)
        }
    }

    final class Journals: Sendable {
        let entries = Mutex<[String]>([])
    }

    @Test func behavioursRunOutermostFirstAndPassTheirContextOn() async throws {
        let journals = Journals()
        let chain = ["a", "b", "c"].map { Tagging(name: $0, journal: journals, answersItself: false) }
        var mediator = Mediator(behaviours: chain)
        mediator.register(Echo())
        let result = try await mediator.send("cmd", context: CommandContext(commandId: "1", correlationId: "corr", logger: Logger(label: "test")))
        #expect(result.aggregateId == "cmd")
        #expect(result.streamId == "corr/a/b/c")
        #expect(journals.entries.withLock { $0 } == ["in a", "in b", "in c", "out c", "out b", "out a"])
    }

    @Test func aBehaviourMayAnswerWithoutTheRest() async throws {
        let journals = Journals()
        var mediator = Mediator(behaviours: [
            Tagging(name: "a", journal: journals, answersItself: false), Tagging(name: "b", journal: journals, answersItself: true),
            Tagging(name: "c", journal: journals, answersItself: false),
        ])
        mediator.register(Echo())
        let result = try await mediator.send("cmd", context: CommandContext(commandId: "1", correlationId: "corr", logger: Logger(label: "test")))
        #expect(result.aggregateId == "b")
        #expect(journals.entries.withLock { $0 } == ["in a", "in b", "out b", "out a"])
    }
}
