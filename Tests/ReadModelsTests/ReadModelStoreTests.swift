import Domain
import Foundation
import Logging
import PostgresConnections
import SQLite
import TestSupport
import Testing

@testable import PostgresReadModels
@testable import ReadModels

/// A history being written: events with gap-free global positions and per-stream versions, as
/// the event store assigns them.
struct History {
    var events: [ProjectedEvent] = []
    var versions: [String: Int64] = [:]

    mutating func add(_ event: any DomainEvent, stream: String, data: [UInt8]? = nil) -> ProjectedEvent {
        let encoded = try! EventTypeRegistry.encode(event)
        let version = (versions[stream] ?? 0) + 1
        versions[stream] = version
        let projected = ProjectedEvent(
            eventId: UUID().uuidString, streamId: stream, type: encoded.type, schemaVersion: encoded.schemaVersion, streamVersion: version,
            position: Int64(events.count + 1), recordedAt: 1_795_435_200_000 + Int64(events.count), data: data ?? encoded.data)
        events.append(projected)
        return projected
    }

    mutating func open(_ id: String, holder: String = "Ada Lovelace", minor: Int64 = 10_000) -> ProjectedEvent {
        add(
            AccountOpened(accountId: id, holder: holder, accountType: .current, openingBalance: Money(amountMinor: minor, currency: "EUR")),
            stream: "BankAccount-\(id)")
    }

    mutating func deposit(_ id: String, _ minor: Int64) -> ProjectedEvent {
        add(FundsDeposited(accountId: id, amount: Money(amountMinor: minor, currency: "EUR")), stream: "BankAccount-\(id)")
    }

    mutating func withdraw(_ id: String, _ minor: Int64) -> ProjectedEvent {
        add(FundsWithdrawn(accountId: id, amount: Money(amountMinor: minor, currency: "EUR")), stream: "BankAccount-\(id)")
    }

    /// The JSON of a deposit, not added to the history (what a forged or replaced record carries).
    func depositData(_ id: String, _ minor: Int64) -> [UInt8] {
        try! EventTypeRegistry.encode(FundsDeposited(accountId: id, amount: Money(amountMinor: minor, currency: "EUR"))).data
    }

    /// A deposit whose JSON no read model can decode.
    mutating func poison(_ id: String) -> ProjectedEvent {
        add(
            FundsDeposited(accountId: id, amount: Money(amountMinor: 1, currency: "EUR")), stream: "BankAccount-\(id)",
            data: Array(#"{"accountId":"\#(id)"}"#.utf8))
    }

    mutating func order(_ id: String, email: String) -> ProjectedEvent {
        add(
            OrderPlaced(orderId: id, customer: Customer(email: email, firstName: "Ada", lastName: "Lovelace"), description: "cards", quantity: 2),
            stream: "Order-\(id)")
    }
}

extension ProjectedEvent {
    /// A record claiming this event's stream version and position under another id and value.
    func impersonated(data: [UInt8]) -> ProjectedEvent {
        var forged = self
        forged.eventId = "forged"
        forged.data = data
        return forged
    }
}

func records(_ events: [ProjectedEvent], from offset: Int64 = 0) -> [IncomingRecord] {
    events.enumerated().map { index, event in
        IncomingRecord(offset: offset + Int64(index), key: event.streamId, value: event.data, event: .success(event))
    }
}

@Suite struct ReadModelStoreTests {
    let directory = TemporaryDirectory(prefix: "readmodels")

    /// Names a schema per test case and store name, so a store opened twice is the same one.
    let prefix = ReadModelKind.uniqueName()

    func store(_ kind: ReadModelKind, _ name: String = "readmodels.sqlite") throws -> ReadModelStore {
        switch kind {
        case .sqlite:
            return try ReadModelStore(path: directory.path + "/" + name)
        case .postgres:
            let url = try #require(ReadModelKind.postgresURL)
            var options = PostgresReadModels.Options()
            options.schema = prefix + "_" + name.replacingOccurrences(of: ".sqlite", with: "")
            return try ReadModelStore(backend: PostgresReadModels(url: url, options: options))
        }
    }

    @Test(arguments: ReadModelKind.allCases) func redeliveredRecordsAndRepublishedEventsAreAppliedOnce(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let batch = [history.open("a"), history.deposit("a", 2_500), history.withdraw("a", 500)]
        let first = try await store.apply(topic: "BankAccount", partition: 0, records: records(batch))
        #expect(first.applied == 3)
        // The same records again (a consumer that restarted before committing to the broker).
        let again = try await store.apply(topic: "BankAccount", partition: 0, records: records(batch))
        #expect(again == BatchOutcome(applied: 0, duplicates: 0, parked: 0), "below the stored offset: not even looked at")
        // The same events at new offsets (the relay published them again after a crash).
        let republished = try await store.apply(topic: "BankAccount", partition: 0, records: records(batch, from: 3))
        #expect(republished.duplicates == 3 && republished.applied == 0)
        let account = try #require(try store.account("a"))
        #expect(account.balanceMinor == 12_000)
        #expect(account.version == 3)
        #expect(try store.transactions(of: "a", afterVersion: 0, limit: 10).rows.map(\.balanceAfter) == [10_000, 12_500, 12_000])
        #expect(try await store.nextOffset(topic: "BankAccount", partition: 0) == 6)
        #expect(store.handledPosition == 3)
    }

    @Test(arguments: ReadModelKind.allCases) func offsetsAndModelsSurviveReopening(_ kind: ReadModelKind) async throws {
        var history = History()
        let batch = [history.open("a"), history.deposit("a", 100)]
        do {
            let store = try store(kind)
            try await store.apply(topic: "BankAccount", partition: 2, records: records(batch, from: 40))
            store.close()
        }
        let reopened = try store(kind)
        #expect(try await reopened.nextOffset(topic: "BankAccount", partition: 2) == 42)
        #expect(reopened.handledPosition == 2)
        #expect(try reopened.account("a")?.balanceMinor == 10_100)
    }

    @Test(arguments: ReadModelKind.allCases) func aPoisonEventIsParkedItsStreamWaitsAndOthersContinue(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let events = [
            history.open("a"), history.open("b"), history.poison("a"), history.deposit("b", 100), history.deposit("a", 300),
            history.deposit("b", 200),
        ]
        let outcome = try await store.apply(topic: "BankAccount", partition: 0, records: records(events))
        #expect(outcome.parked == 2 && outcome.applied == 4)
        #expect(try store.account("b")?.balanceMinor == 10_300, "the other stream goes on")
        #expect(try store.account("a")?.balanceMinor == 10_000, "a's later deposit waits behind its poison event")
        let parked = try store.parked(afterId: 0, limit: 10).rows
        #expect(parked.map(\.state) == ["FAILED", "WAITING"])
        #expect(parked[0].streamVersion == 2 && parked[0].error.contains("FundsDeposited"))
        #expect(store.handledPosition == 6, "parked events count as handled, so read-your-writes never hangs on them")

        // A retry fails again (the event is still bad) and keeps the order.
        let retried = try await store.resolveParked(ids: nil, skip: false)
        #expect(retried.applied == 0)
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.attempts) == [2, 1])
        // A skip needs the event store's word: the store's own event is never dropped...
        let refused = try await store.resolveParked(ids: [parked[0].id], skip: true, stored: [parked[0].id: .same])
        #expect(refused.skipped == 0 && refused.kept == [parked[0].id])
        let unchecked = try await store.resolveParked(ids: [parked[0].id], skip: true)
        #expect(unchecked.skipped == 0 && unchecked.kept == [parked[0].id], "no verdict, no skip")
        // ...while a record at a version where the store holds another event is replaced by it.
        var real = events[2]
        real.eventId = "the-stores-event"
        real.data = history.depositData("a", 1)
        let skipped = try await store.resolveParked(ids: [parked[0].id], skip: true, stored: [parked[0].id: .other(real)])
        #expect(skipped.skipped == 1 && skipped.applied == 2)
        #expect(try store.account("a")?.balanceMinor == 10_301)
        #expect(try store.account("a")?.version == 3)
        #expect(try store.parked(afterId: 0, limit: 10).rows.isEmpty)
    }

    @Test(arguments: ReadModelKind.allCases) func aSecondEventAtAParkedStreamVersionIsAConflictNotADuplicate(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let open = history.open("a")
        let deposit = history.deposit("a", 300)
        let forged = deposit.impersonated(data: Array(#"{"amount":"not money"}"#.utf8))
        try await store.apply(topic: "BankAccount", partition: 0, records: records([open, forged]))
        // The real event arrives with the same stream version and position.
        let outcome = try await store.apply(topic: "BankAccount", partition: 0, records: records([deposit], from: 2))
        #expect(outcome.parked == 1 && outcome.duplicates == 0, "kept, not dropped as a duplicate")
        let parked = try store.parked(afterId: 0, limit: 10).rows
        #expect(parked.map(\.state) == ["CONFLICT", "CONFLICT"], "both claimants")
        #expect(parked[1].eventId == deposit.eventId && parked[1].error.contains("claimed by parked event \(parked[0].id)"))
        #expect(parked[0].error.contains("claimed by event \(deposit.eventId) too"))
        // A retry cannot choose between them.
        #expect(try await store.resolveParked(ids: nil, skip: false).applied == 0)
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.state) == ["CONFLICT", "CONFLICT"])
        // The store holds the deposit: skipping the forged record applies the real one.
        let skipped = try await store.resolveParked(
            ids: nil, skip: true, stored: [parked[0].id: .other(deposit), parked[1].id: .same])
        #expect(skipped.skipped == 1 && skipped.applied == 1 && skipped.kept == [parked[1].id])
        #expect(try store.account("a")?.balanceMinor == 10_300)
        #expect(try store.parked(afterId: 0, limit: 10).rows.isEmpty)
    }

    @Test(arguments: ReadModelKind.allCases) func anEventClaimingTheLastAppliedVersionIsAConflict(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let open = history.open("a")
        let deposit = history.deposit("a", 300)
        let forged = deposit.impersonated(data: history.depositData("a", 9_999))
        try await store.apply(topic: "BankAccount", partition: 0, records: records([open, forged]))
        #expect(try store.account("a")?.balanceMinor == 10_000 + 9_999, "a well-formed forgery is applied")
        let outcome = try await store.apply(topic: "BankAccount", partition: 0, records: records([deposit], from: 2))
        #expect(outcome.parked == 1)
        let conflict = try #require(try store.parked(afterId: 0, limit: 10).rows.first)
        #expect(conflict.state == "CONFLICT" && conflict.error.contains("applied from event forged"))
        // The stream waits behind the conflict, and the store's event is not skipped.
        let next = history.deposit("a", 1)
        try await store.apply(topic: "BankAccount", partition: 0, records: records([next], from: 3))
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.state) == ["CONFLICT", "WAITING"])
        #expect(try await store.resolveParked(ids: nil, skip: true, stored: [conflict.id: .same]).kept == [conflict.id])
        // The same record again is a duplicate of the parked one, not a second conflict.
        #expect(try await store.apply(topic: "BankAccount", partition: 1, records: records([deposit])).parked == 0)
    }

    /// A forger's second claim on a stream waits behind the store's event its first claim
    /// conflicted with; a skip of all checks it too, so only the store's own events stay parked.
    @Test(arguments: ReadModelKind.allCases) func aSkipOfAllDropsAForgedRecordWaitingBehindTheStoresEvent(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let open = history.open("a")
        let deposit = history.deposit("a", 300)
        let forged = deposit.impersonated(data: history.depositData("a", 9_999))
        var next = forged
        (next.eventId, next.streamVersion, next.position) = ("forged-2", 3, 3)
        try await store.apply(topic: "BankAccount", partition: 0, records: records([open, forged, deposit, next]))
        let parked = try store.parked(afterId: 0, limit: 10).rows
        #expect(parked.map(\.state) == ["CONFLICT", "WAITING"])
        // The service asks the store about every record a skip of all selects, waiting ones included.
        let claims = try await store.parkedClaims(ids: nil)
        #expect(claims.map(\.id) == parked.map(\.id))
        let skipped = try await store.resolveParked(ids: nil, skip: true, stored: [parked[0].id: .same, parked[1].id: .absent])
        #expect(skipped.skipped == 1 && skipped.kept == [parked[0].id])
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.id) == [parked[0].id])
        // A retry still selects only FAILED and CONFLICT records.
        #expect(try await store.resolveParked(ids: nil, skip: false).applied == 0)
    }

    @Test(arguments: ReadModelKind.allCases) func skippingARecordTheStoreDoesNotHaveLeavesTheStreamWhereItWas(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let open = history.open("a")
        var forged = history.poison("a")
        forged.eventId = "forged"
        try await store.apply(topic: "BankAccount", partition: 0, records: records([open, forged]))
        let parked = try #require(try store.parked(afterId: 0, limit: 10).rows.first)
        let skipped = try await store.resolveParked(ids: [parked.id], skip: true, stored: [parked.id: .absent])
        #expect(skipped.skipped == 1)
        #expect(try store.account("a")?.version == 1, "the stream did not move past a version the store never had")
        // So the store's real version 2, when it comes, is applied.
        var real = history.deposit("a", 5)
        real.streamVersion = 2
        try await store.apply(topic: "BankAccount", partition: 0, records: records([real], from: 2))
        #expect(try store.account("a")?.balanceMinor == 10_005)
    }

    @Test(arguments: ReadModelKind.allCases) func aRetryAppliesAParkedEventOnceItFits(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let open = history.open("a")
        let deposit = history.deposit("a", 700)
        // The deposit arrives alone first: a gap (version 2 before 1) is parked, not applied.
        let gap = try await store.apply(topic: "BankAccount", partition: 1, records: records([deposit], from: 0))
        #expect(gap.parked == 1)
        #expect(try store.parked(afterId: 0, limit: 10).rows.first?.error.contains("gap") == true)
        // Version 1 arrives: it comes before the parked version in the stream's order, so it
        // is applied; the retry then applies the parked deposit.
        try await store.apply(topic: "BankAccount", partition: 0, records: records([open]))
        #expect(try store.account("a")?.balanceMinor == 10_000)
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.state) == ["FAILED"])
        let retried = try await store.resolveParked(ids: nil, skip: false)
        #expect(retried.applied == 1, "the stream's parked events apply in version order")
        #expect(try store.account("a")?.balanceMinor == 10_700)
        #expect(try store.parked(afterId: 0, limit: 10).rows.isEmpty)
    }

    @Test(arguments: ReadModelKind.allCases) func aRecordClaimingAVersionAheadDoesNotHoldBackTheEventsBeforeIt(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let open = history.open("a")
        let deposits = (1...3).map { history.deposit("a", Int64($0)) }
        let fifth = history.deposit("a", 1000)
        // A forger claims version 5 while the bus has carried only version 1 (its relay is behind).
        let ahead = fifth.impersonated(data: history.depositData("a", 1_000_000))
        try await store.apply(topic: "BankAccount", partition: 0, records: records([open, ahead]))
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.state) == ["FAILED"], "a gap")
        // The real versions 2 to 4 come before the claim: they are applied, in order.
        try await store.apply(topic: "BankAccount", partition: 0, records: records(deposits, from: 2))
        #expect(try store.account("a")?.balanceMinor == 10_006)
        #expect(try store.account("a")?.version == 4)
        // The real version 5 meets the claim: both are claimants, for SkipParked to settle.
        try await store.apply(topic: "BankAccount", partition: 0, records: records([fifth], from: 5))
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.state) == ["CONFLICT", "CONFLICT"])
        // Version 6 would pass the contested version 5: it waits.
        try await store.apply(topic: "BankAccount", partition: 0, records: records([history.deposit("a", 7)], from: 6))
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.state) == ["CONFLICT", "CONFLICT", "WAITING"])
        #expect(try store.account("a")?.balanceMinor == 10_006)
    }

    @Test(arguments: ReadModelKind.allCases) func readYourWritesWaitsForEveryEarlierPosition(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let first = history.open("a")
        let second = history.order("o1", email: "ada@example.com")
        // Position 2 arrives first (another topic): position 2 is not handled until 1 is.
        try await store.apply(topic: "OnNewOrder", partition: 0, records: records([second]))
        #expect(store.handledPosition == 0)
        #expect(await store.waitForPosition(2, timeout: .milliseconds(50)) == false)
        async let waited = store.waitForPosition(2, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(20))
        try await store.apply(topic: "BankAccount", partition: 0, records: records([first]))
        #expect(await waited)
        #expect(store.handledPosition == 2)
    }

    @Test(arguments: ReadModelKind.allCases) func rebuildEqualsTheLiveModelsAndNeverDoubleCounts(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        for index in 0..<20 { _ = history.open("acct-\(index)", holder: index % 2 == 0 ? "Ada" : "Grace") }
        for round in 0..<5 {
            for index in 0..<20 { _ = round % 2 == 0 ? history.deposit("acct-\(index)", Int64(100 + index)) : history.withdraw("acct-\(index)", 50) }
        }
        for index in 0..<10 { _ = history.order("order-\(index)", email: "customer\(index % 3)@example.com") }
        let accounts = history.events.filter { $0.streamId.hasPrefix("BankAccount") }
        let orders = history.events.filter { $0.streamId.hasPrefix("Order") }
        try await store.apply(topic: "BankAccount", partition: 0, records: records(accounts))
        try await store.apply(topic: "OnNewOrder", partition: 0, records: records(orders))
        let live = try store.canonicalDump()

        for _ in 0..<2 {
            let rebuild = try ReadModelRebuild(beside: store)
            for page in stride(from: 0, to: history.events.count, by: 37) {
                try rebuild.apply(Array(history.events[page..<min(page + 37, history.events.count)]))
            }
            let counts = try await store.finishRebuild(rebuild) {}
            #expect(counts["accounts"] == 20 && counts["orders"] == 10 && counts["customers"] == 3)
            #expect(try store.canonicalDump() == live, "a rebuild onto the live models equals them")
        }
        #expect(try store.account("acct-3")?.balanceMinor == 10_000 + 3 * 103 - 2 * 50)
        // The live projection goes on after the swap: redelivered events are still skipped.
        let again = try await store.apply(topic: "BankAccount", partition: 0, records: records(accounts, from: Int64(accounts.count)))
        #expect(again.applied == 0 && again.duplicates == accounts.count)
        #expect(try store.canonicalDump() == live)
    }

    @Test(arguments: ReadModelKind.allCases) func customersAgreeWithARebuildWhateverOrderTheirOrdersArriveIn(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        let first = history.order("o-1", email: "Ada@example.com")
        let second = history.add(
            OrderPlaced(
                orderId: "o-2", customer: Customer(email: "ada@example.com", firstName: "Augusta", lastName: "King"), description: "x", quantity: 1),
            stream: "Order-o-2")
        let third = history.order("o-3", email: "ADA@example.com")
        // Three partitions, applied latest first.
        try await store.apply(topic: "OnNewOrder", partition: 2, records: records([third]))
        try await store.apply(topic: "OnNewOrder", partition: 1, records: records([second]))
        try await store.apply(topic: "OnNewOrder", partition: 0, records: records([first]))
        let live = try store.canonicalDump()
        let customer = try #require(try store.customer("ada@example.com"))
        #expect(customer.orderCount == 3 && customer.email == "ADA@example.com" && customer.firstName == "Ada")
        #expect(customer.firstOrderAt == first.recordedAt && customer.lastOrderAt == third.recordedAt)
        let rebuild = try ReadModelRebuild(beside: store)
        try rebuild.apply(history.events)
        _ = try await store.finishRebuild(rebuild) {}
        #expect(try store.canonicalDump() == live)
    }

    /// A page is first applied without a savepoint per event; a failing event rolls that attempt
    /// back and the page runs again event by event. What came before the failure in the page must
    /// then count once, and the result must be the live path's.
    @Test(arguments: ReadModelKind.allCases) func aPoisonEventInARebuildPageIsParkedAndTheRestCountsOnce(_ kind: ReadModelKind) async throws {
        var history = History()
        _ = history.open("a")
        _ = history.open("b")
        _ = history.deposit("b", 100)
        _ = history.poison("a")
        _ = history.deposit("a", 300)
        _ = history.deposit("b", 200)
        _ = history.withdraw("b", 50)
        let live = try store(kind, "live.sqlite")
        let outcome = try await live.apply(topic: "BankAccount", partition: 0, records: records(history.events))
        #expect(outcome.applied == 5 && outcome.parked == 2)

        let rebuilt = try store(kind, "rebuilt.sqlite")
        let rebuild = try ReadModelRebuild(beside: rebuilt)
        try rebuild.apply(history.events)
        _ = try await rebuilt.finishRebuild(rebuild) {}
        for models in [live, rebuilt] {
            #expect(try models.account("b")?.balanceMinor == 10_250)
            #expect(try models.account("b")?.version == 4)
            #expect(try models.account("a")?.balanceMinor == 10_000)
            #expect(try models.transactions(of: "b", afterVersion: 0, limit: 10).rows.map(\.amountMinor) == [10_000, 100, 200, 50])
            #expect(try models.parked(afterId: 0, limit: 10).rows.map(\.state) == ["FAILED", "WAITING"])
            #expect(models.handledPosition == 7)
        }
    }

    /// A rebuild's writer carries its folds and stream versions from page to page and never reads
    /// back what it wrote; a page whose first attempt fails (a poison event) is applied again
    /// with savepoints from what the database holds, and the pages after it go on from there.
    @Test(arguments: ReadModelKind.allCases) func aRebuildInPagesAgreesWithTheLiveModelsAcrossAFailedAttempt(_ kind: ReadModelKind) async throws {
        var history = History()
        for round in 0..<6 {
            for account in ["a", "b", "c"] {
                if round == 0 { _ = history.open(account) } else { _ = history.deposit(account, Int64(10 * round)) }
            }
            if round == 2 { _ = history.poison("b") }
            if round == 3 { _ = history.withdraw("c", 5) }
        }
        let live = try store(kind, "live.sqlite")
        _ = try await live.apply(topic: "BankAccount", partition: 0, records: records(history.events))
        let rebuilt = try store(kind, "rebuilt.sqlite")
        let rebuild = try ReadModelRebuild(beside: rebuilt)
        for page in stride(from: 0, to: history.events.count, by: 4) {
            try rebuild.apply(Array(history.events[page..<min(page + 4, history.events.count)]))
        }
        _ = try await rebuilt.finishRebuild(rebuild) {}
        #expect(try rebuilt.canonicalDump() == live.canonicalDump())
        #expect(try rebuilt.account("a")?.balanceMinor == 10_000 + 10 + 20 + 30 + 40 + 50)
        #expect(try rebuilt.account("c")?.balanceMinor == 10_000 + 10 + 20 + 30 + 40 + 50 - 5)
        #expect(try rebuilt.parked(afterId: 0, limit: 10).rows.map(\.state).first == "FAILED")
    }

    /// Balances are exact to the last unit of Int64; a sum past it, another currency or an
    /// unknown account is parked with the reason, the balance untouched.
    @Test(arguments: ReadModelKind.allCases) func balancesStayExactAndABadMoveIsParkedWithItsReason(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        _ = history.open("big", minor: Int64.max - 10)
        _ = history.deposit("big", 5)
        _ = history.deposit("big", 10)
        _ = history.open("low", minor: 0)
        _ = history.withdraw("low", Int64.max)
        _ = history.withdraw("low", 2)
        _ = history.open("eur")
        _ = history.add(FundsDeposited(accountId: "eur", amount: Money(amountMinor: 1, currency: "USD")), stream: "BankAccount-eur")
        _ = history.deposit("ghost", 1)
        let outcome = try await store.apply(topic: "BankAccount", partition: 0, records: records(history.events))
        #expect(outcome.applied == 5 && outcome.parked == 4)
        #expect(try store.account("big")?.balanceMinor == Int64.max - 5)
        #expect(try store.account("low")?.balanceMinor == -Int64.max)
        #expect(try store.account("eur")?.balanceMinor == 10_000)
        let errors = try store.parked(afterId: 0, limit: 10).rows.map(\.error)
        #expect(errors.count == 4)
        #expect(errors[0].contains("overflow") && errors[1].contains("overflow"))
        #expect(errors[2].contains("holds EUR, the event moves USD"))
        #expect(errors[3].contains("not in the read model"))
    }

    /// A rebuild page folds each account's moves in memory and writes the row once; a close in
    /// the same page must come after the folded moves, and the result must equal the live path's.
    @Test(arguments: ReadModelKind.allCases) func aRebuildPageFoldsMovesAndClosesInOrder(_ kind: ReadModelKind) async throws {
        var history = History()
        for id in ["a", "b"] { _ = history.open(id, minor: 1_000) }
        for round in 0..<4 {
            _ = history.deposit("a", 100 + Int64(round))
            _ = history.withdraw("b", 10)
            _ = history.deposit("b", 1)
        }
        _ = history.add(AccountClosed(accountId: "a"), stream: "BankAccount-a")
        _ = history.deposit("b", 5)
        let live = try store(kind, "live.sqlite")
        try await live.apply(topic: "BankAccount", partition: 0, records: records(history.events))
        let rebuilt = try store(kind, "rebuilt.sqlite")
        let rebuild = try ReadModelRebuild(beside: rebuilt)
        try rebuild.apply(history.events)
        _ = try await rebuilt.finishRebuild(rebuild) {}
        #expect(try rebuilt.canonicalDump() == live.canonicalDump())
        let a = try #require(try rebuilt.account("a"))
        #expect(a.balanceMinor == 1_000 + 100 + 101 + 102 + 103 && a.status == "CLOSED" && a.version == 6)
        let b = try #require(try rebuilt.account("b"))
        #expect(b.balanceMinor == 1_000 - 40 + 4 + 5 && b.version == 10 && b.position == Int64(history.events.count))
    }

    /// A batch opens accounts in memory and inserts their rows at its end; an account opened
    /// twice, in the same batch or after an earlier one stored it, is parked either way, and the
    /// first opening's row stands.
    @Test(arguments: ReadModelKind.allCases) func anAccountOpenedTwiceIsParkedWhereverItsFirstOpeningIs(_ kind: ReadModelKind) async throws {
        var history = History()
        _ = history.open("a", holder: "Ada Lovelace", minor: 500)
        _ = history.deposit("a", 20)
        _ = history.open("a", holder: "Someone Else", minor: 1)
        _ = history.open("b", holder: "Grace Hopper", minor: 700)
        let firstBatch = history.events.count
        _ = history.open("b", holder: "Someone Else", minor: 2)
        _ = history.withdraw("b", 100)
        let live = try store(kind, "live.sqlite")
        let first = try await live.apply(topic: "BankAccount", partition: 0, records: records(Array(history.events[..<firstBatch])))
        let second = try await live.apply(
            topic: "BankAccount", partition: 0, records: records(Array(history.events[firstBatch...]), from: Int64(firstBatch)))
        #expect(first.applied == 3 && first.parked == 1 && second.applied == 0 && second.parked == 2)

        let rebuilt = try store(kind, "rebuilt.sqlite")
        let rebuild = try ReadModelRebuild(beside: rebuilt)
        try rebuild.apply(history.events)
        _ = try await rebuilt.finishRebuild(rebuild) {}
        for models in [live, rebuilt] {
            let a = try #require(try models.account("a"))
            #expect(a.holder == "Ada Lovelace" && a.balanceMinor == 520 && a.version == 2 && a.openedAt == history.events[0].recordedAt)
            let b = try #require(try models.account("b"))
            #expect(b.holder == "Grace Hopper" && b.balanceMinor == 700 && b.version == 1)
            #expect(try models.accounts(matching: AccountFilter(holder: "grace hopper"), after: nil, limit: 10).rows.map(\.accountId) == ["b"])
            let parked = try models.parked(afterId: 0, limit: 10).rows
            #expect(parked.map(\.state) == ["FAILED", "FAILED", "WAITING"])
            #expect(parked.prefix(2).allSatisfy { $0.error.contains("is already open") })
        }
    }

    /// A PostgreSQL rebuild loads the history without the indexes applying never reads through
    /// (`RebuildIndexes`) and builds them before the swap: the live schema ends with the same
    /// indexes and constraints it had; a duplicate the put-off primary key would have refused
    /// fails the rebuild there, and the live models stay as they were.
    @Test func aPostgresRebuildBuildsItsPutOffIndexesBeforeTheSwapAndAViolationKeepsTheLiveModels() async throws {
        guard let url = ReadModelKind.postgresURL else { return }
        let store = try store(.postgres)
        defer { store.close() }
        let schema = prefix + "_readmodels"
        var history = History()
        for index in 0..<12 { _ = history.open("acct-\(index)", holder: "Holder \(index % 4)") }
        for index in 0..<12 { _ = history.deposit("acct-\(index)", Int64(10 * index + 1)) }
        _ = history.order("order-1", email: "ada@example.com")
        try await store.apply(topic: "BankAccount", partition: 0, records: records(history.events.filter { $0.streamId.hasPrefix("BankAccount") }))
        try await store.apply(topic: "OnNewOrder", partition: 0, records: records(history.events.filter { $0.streamId.hasPrefix("Order") }))
        let live = try store.canonicalDump()
        let inspector = try ReadModelKind.adminConnection(url)
        defer { inspector.close() }
        func indexes(_ schema: String) throws -> [String] {
            try inspector.query(
                "SELECT tablename || ' ' || replace(indexdef, ?, 'S.') FROM pg_indexes WHERE schemaname = ? ORDER BY 1",
                .text("\(schema)."), .text(schema)
            ) { $0.text(0) }
        }
        let before = try indexes(schema)
        #expect(before.contains { $0.hasPrefix("account_transactions CREATE UNIQUE INDEX account_transactions_pkey") })
        #expect(before.contains { $0.hasPrefix("accounts CREATE INDEX accounts_by_balance") })

        let rebuild = try ReadModelRebuild(beside: store)
        let loading = try indexes(rebuild.path)
        #expect(!loading.contains { $0.hasPrefix("account_transactions ") }, "the transactions load with no index at all")
        #expect(loading.contains { $0.hasPrefix("accounts CREATE UNIQUE INDEX accounts_pkey") }, "applying reads accounts by key")
        #expect(!loading.contains { $0.contains("accounts_by_holder") || $0.contains("accounts_by_balance") || $0.contains("orders_by_") })
        #expect(loading.contains { $0.contains("applications_by_job") }, "a job's update finds its applications through it")
        try rebuild.apply(history.events)
        try rebuild.finishLoading()
        #expect(try indexes(rebuild.path) == before.map { $0 }, "every put-off index built, under its own name")
        _ = try await store.finishRebuild(rebuild) {}
        #expect(try indexes(schema) == before)
        #expect(try store.canonicalDump() == live)
        let constraints = try inspector.query(
            """
            SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = ? AND contype = 'p' ORDER BY 1
            """, .text(schema)
        ) { $0.text(0) }
        #expect(constraints.contains("account_transactions_pkey") && constraints.contains("accounts_pkey"))

        let broken = try ReadModelRebuild(beside: store)
        try broken.apply(history.events)
        // A row the primary key refuses, slipped in while it was put off.
        try inspector.execute(
            "INSERT INTO \"\(broken.path)\".account_transactions SELECT * FROM \"\(broken.path)\".account_transactions LIMIT 1")
        await #expect(throws: (any Error).self) { _ = try await store.finishRebuild(broken) {} }
        broken.discard()
        #expect(try store.canonicalDump() == live, "the live models stay")
        #expect(try indexes(schema) == before)
        #expect(try indexes(broken.path).isEmpty, "the shadow schema is gone")
    }

    @Test(arguments: ReadModelKind.allCases) func aRebuildRefusesAHistoryWithAHole(_ kind: ReadModelKind) throws {
        let store = try store(kind)
        var history = History()
        _ = history.open("a")
        _ = history.deposit("a", 1)
        let rebuild = try ReadModelRebuild(beside: store)
        #expect(throws: ReadModelError.self) { try rebuild.apply([history.events[1]]) }
        rebuild.discard()
        #expect(!FileManager.default.fileExists(atPath: rebuild.path))
    }

    @Test(arguments: ReadModelKind.allCases) func queriesFindByHolderAndBalanceAndPage(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        _ = history.open("a1", holder: "Ada Lovelace", minor: 5_000)
        _ = history.open("a2", holder: "ada lovelace", minor: 50_000)
        _ = history.open("a3", holder: "Grace Hopper", minor: 20_000)
        try await store.apply(topic: "BankAccount", partition: 0, records: records(history.events))
        #expect(try store.accounts(matching: AccountFilter(holder: "ADA LOVELACE"), after: nil, limit: 10).rows.map(\.accountId) == ["a1", "a2"])
        #expect(
            try store.accounts(matching: AccountFilter(balanceAbove: ("EUR", 10_000)), after: nil, limit: 10).rows.map(\.accountId) == ["a2", "a3"])
        #expect(try store.accounts(matching: AccountFilter(balanceAbove: ("USD", 0)), after: nil, limit: 10).rows.isEmpty)
        #expect(
            try store.accounts(matching: AccountFilter(balanceAbove: ("EUR", 10_000), balanceBelow: ("EUR", 30_000)), after: nil, limit: 10).rows
                .map(\.accountId) == ["a3"])
        let first = try store.accounts(after: nil, limit: 2)
        #expect(first.rows.map(\.accountId) == ["a1", "a2"] && first.hasMore)
        let second = try store.accounts(after: "a2", limit: 2)
        #expect(second.rows.map(\.accountId) == ["a3"] && !second.hasMore)
    }

    /// Event-carried state: an application's copy of its job ends at the job's latest version
    /// whichever topic the read models hear first, as a rebuild (position order) has it.
    @Test(arguments: ReadModelKind.allCases) func anApplicationsCopyOfItsJobIsTheLatestWhateverTheArrivalOrder(_ kind: ReadModelKind) async throws {
        var history = History()
        let created = history.add(JobCreated(jobId: "j", title: "Engineer", description: "Build it."), stream: "Job-j")
        let copy = JobCopy(title: "Engineer", description: "Build it.", status: "OPEN", version: 1)
        let applied = history.add(
            ApplicationCreated(
                applicationId: "a", jobId: "j", firstName: "Grace", lastName: "Hopper", email: "g@example.com", currentPosition: "P", job: copy),
            stream: "Application-a")
        let updated = history.add(JobUpdated(jobId: "j", title: "Senior engineer", description: "Build more."), stream: "Job-j")
        let archived = history.add(JobArchived(jobId: "j"), stream: "Job-j")
        var dumps: [String] = []
        for (index, jobsFirst) in [true, false].enumerated() {
            let store = try store(kind, "order\(index).sqlite")
            let jobBatch = records([created, updated, archived])
            if jobsFirst {
                try await store.apply(topic: "job", partition: 0, records: jobBatch)
                try await store.apply(topic: "application", partition: 0, records: records([applied]))
            } else {
                try await store.apply(topic: "application", partition: 0, records: records([applied]))
                try await store.apply(topic: "job", partition: 0, records: jobBatch)
            }
            let application = try #require(try store.application("a"))
            #expect(application.job == JobCopy(title: "Senior engineer", description: "Build more.", status: "ARCHIVED", version: 3))
            #expect(try store.job("j")?.status == "ARCHIVED")
            #expect(try store.parked(afterId: 0, limit: 10).rows.isEmpty)
            dumps.append(try store.canonicalDump())
        }
        #expect(dumps[0] == dumps[1])
        let rebuilt = try store(kind, "rebuilt.sqlite")
        let rebuild = try ReadModelRebuild(beside: rebuilt)
        try rebuild.apply(history.events)
        _ = try await rebuilt.finishRebuild(rebuild) {}
        #expect(try rebuilt.canonicalDump() == dumps[0], "a rebuild in position order agrees")
    }

    @Test(arguments: ReadModelKind.allCases) func watchersAreNudgedWhenTheirAccountChanges(_ kind: ReadModelKind) async throws {
        let store = try store(kind)
        var history = History()
        try await store.apply(topic: "BankAccount", partition: 0, records: records([history.open("a"), history.open("b")]))
        let nudges = store.watch(stream: "BankAccount-a")
        var iterator = nudges.makeAsyncIterator()
        try await store.apply(topic: "BankAccount", partition: 0, records: records([history.deposit("b", 1)], from: 2))
        try await store.apply(topic: "BankAccount", partition: 0, records: records([history.deposit("a", 1)], from: 3))
        let nudged: Void? = await iterator.next()
        #expect(nudged != nil)
    }
}

@Suite struct ReadModelSchemaTests {
    let directory = TemporaryDirectory(prefix: "readmodel-schema")

    /// The schema version 1 created (tables of the accounts and orders with the bookkeeping),
    /// as it was: what a database from then holds.
    static let version1 = """
            BEGIN;
            CREATE TABLE accounts(
                account_id TEXT PRIMARY KEY, holder TEXT NOT NULL, holder_key TEXT NOT NULL, account_type TEXT NOT NULL,
                balance_minor INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
                opened_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX accounts_by_holder ON accounts(holder_key, account_id);
            CREATE INDEX accounts_by_balance ON accounts(currency, balance_minor);
            CREATE TABLE account_transactions(
                account_id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, amount_minor INTEGER NOT NULL,
                currency TEXT NOT NULL, balance_after INTEGER NOT NULL, at INTEGER NOT NULL, position INTEGER NOT NULL,
                PRIMARY KEY(account_id, version)
            ) WITHOUT ROWID;
            CREATE TABLE orders(
                order_id TEXT PRIMARY KEY, customer_email TEXT NOT NULL, customer_key TEXT NOT NULL, first_name TEXT NOT NULL,
                last_name TEXT NOT NULL, description TEXT NOT NULL, quantity INTEGER NOT NULL, created_at INTEGER NOT NULL,
                position INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX orders_by_position ON orders(position);
            CREATE INDEX orders_by_customer ON orders(customer_key, position);
            CREATE TABLE customers(
                email_key TEXT PRIMARY KEY, email TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                order_count INTEGER NOT NULL, first_order_at INTEGER NOT NULL, last_order_at INTEGER NOT NULL,
                first_position INTEGER NOT NULL, last_position INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE streams(stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE offsets(
                topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, PRIMARY KEY(topic, partition)
            ) WITHOUT ROWID;
            CREATE TABLE handled_positions(position INTEGER PRIMARY KEY);
            CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE parked(
                id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                offset INTEGER NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, stream_id TEXT NOT NULL,
                stream_version INTEGER NOT NULL, position INTEGER NOT NULL, schema_version INTEGER NOT NULL,
                recorded_at INTEGER NOT NULL, data BLOB, error TEXT NOT NULL, attempts INTEGER NOT NULL, parked_at INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX parked_event ON parked(stream_id, stream_version) WHERE stream_id <> '';
            PRAGMA user_version = 1;
            COMMIT;
        """

    @Test func aVersion1DatabaseIsMigratedInPlaceAndKeepsItsRows() async throws {
        let path = directory.path + "/v1.sqlite"
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute(Self.version1)
            try db.execute("INSERT INTO streams(stream_id, version) VALUES('BankAccount-a', 1)")
            try db.execute(
                """
                INSERT INTO accounts VALUES('a', 'Ada Lovelace', 'ada lovelace', 'CURRENT', 10000, 'EUR', 'OPEN', 1, 1, 1, 1);
                INSERT INTO account_transactions VALUES('a', 1, 'OPENING_BALANCE', 10000, 'EUR', 10000, 1, 1);
                """)
        }
        let store = try ReadModelStore(path: path)
        var history = History()
        _ = history.open("a")
        let deposit = history.deposit("a", 5)
        let forged = deposit.impersonated(data: Array("{}".utf8))
        // The old row reads as version 1 with no event id; the new index tells two events apart.
        try await store.apply(topic: "BankAccount", partition: 0, records: records([forged, deposit]))
        #expect(try store.parked(afterId: 0, limit: 10).rows.map(\.state) == ["CONFLICT", "CONFLICT"])
        // The projections' first migrations found their tables there, rows and all.
        #expect(try store.account("a")?.balanceMinor == 10_000)
        #expect(try store.transactions(of: "a", afterVersion: 0, limit: 10).rows.map(\.kind) == ["OPENING_BALANCE"])
        let versions = try SQLiteConnection(path: path).query("SELECT name, version FROM projection_versions ORDER BY name", []) {
            "\($0.text(0))=\($0.int64(1))"
        }
        #expect(versions == ReadSide.projections.map { "\($0.name)=1" }.sorted())
        #expect(versions.contains("accounts=1") && versions.contains("orders=1"))
    }

    /// The PostgreSQL schema version 1 created, as it was (`\\(s)` is the schema, quoted).
    static func postgresVersion1(_ s: String) -> String {
        """
        CREATE TABLE \(s).accounts(
            account_id TEXT PRIMARY KEY, holder TEXT NOT NULL, holder_key TEXT NOT NULL, account_type TEXT NOT NULL,
            balance_minor BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
            opened_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, version BIGINT NOT NULL, position BIGINT NOT NULL
        );
        CREATE INDEX accounts_by_holder ON \(s).accounts(holder_key, account_id);
        CREATE INDEX accounts_by_balance ON \(s).accounts(currency, balance_minor);
        CREATE TABLE \(s).account_transactions(
            account_id TEXT NOT NULL, version BIGINT NOT NULL, kind TEXT NOT NULL, amount_minor BIGINT NOT NULL,
            currency TEXT NOT NULL, balance_after BIGINT NOT NULL, at BIGINT NOT NULL, position BIGINT NOT NULL,
            PRIMARY KEY(account_id, version)
        );
        CREATE TABLE \(s).orders(
            order_id TEXT PRIMARY KEY, customer_email TEXT NOT NULL, customer_key TEXT NOT NULL, first_name TEXT NOT NULL,
            last_name TEXT NOT NULL, description TEXT NOT NULL, quantity BIGINT NOT NULL, created_at BIGINT NOT NULL,
            position BIGINT NOT NULL
        );
        CREATE INDEX orders_by_position ON \(s).orders(position);
        CREATE INDEX orders_by_customer ON \(s).orders(customer_key, position);
        CREATE TABLE \(s).customers(
            email_key TEXT PRIMARY KEY, email TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
            order_count BIGINT NOT NULL, first_order_at BIGINT NOT NULL, last_order_at BIGINT NOT NULL,
            first_position BIGINT NOT NULL, last_position BIGINT NOT NULL
        );
        CREATE TABLE \(s).streams(stream_id TEXT PRIMARY KEY, version BIGINT NOT NULL, event_id TEXT NOT NULL DEFAULT '');
        CREATE TABLE \(s).offsets(
            topic TEXT NOT NULL, partition BIGINT NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY(topic, partition)
        );
        CREATE TABLE \(s).handled_positions(position BIGINT PRIMARY KEY);
        CREATE TABLE \(s).meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL);
        CREATE TABLE \(s).parked(
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, state TEXT NOT NULL, topic TEXT NOT NULL,
            partition BIGINT NOT NULL, "offset" BIGINT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
            stream_id TEXT NOT NULL, stream_version BIGINT NOT NULL, position BIGINT NOT NULL, schema_version BIGINT NOT NULL,
            recorded_at BIGINT NOT NULL, data BYTEA, error TEXT NOT NULL, attempts BIGINT NOT NULL, parked_at BIGINT NOT NULL
        );
        CREATE UNIQUE INDEX parked_event ON \(s).parked(stream_id, stream_version, event_id) WHERE stream_id <> '';
        INSERT INTO \(s).meta(key, value) VALUES('schema_version', 1)
        """
    }

    @Test func aVersion1PostgresSchemaIsMigratedInPlaceAndKeepsItsRows() async throws {
        guard let url = ReadModelKind.postgresURL else { return }
        let schema = ReadModelKind.uniqueName("_v1")
        do {
            let setup = try ReadModelKind.adminConnection(url)
            defer { setup.close() }
            try setup.execute("CREATE SCHEMA \"\(schema)\"")
            try setup.execute(Self.postgresVersion1("\"\(schema)\""))
            try setup.execute(
                """
                INSERT INTO "\(schema)".accounts VALUES('a', 'Ada Lovelace', 'ada lovelace', 'CURRENT', 10000, 'EUR', 'OPEN', 1, 1, 1, 1);
                INSERT INTO "\(schema)".streams(stream_id, version) VALUES('BankAccount-a', 1)
                """)
        }
        var options = PostgresReadModels.Options()
        options.schema = schema
        let store = try ReadModelStore(backend: PostgresReadModels(url: url, options: options))
        defer { store.close() }
        #expect(try store.account("a")?.balanceMinor == 10_000, "the projections' first migrations found their tables, rows and all")
        var history = History()
        _ = history.open("a")
        let deposit = history.deposit("a", 5)
        try await store.apply(topic: "BankAccount", partition: 0, records: records([deposit]))
        #expect(try store.account("a")?.balanceMinor == 10_005)
        #expect(try store.job("nope") == nil, "a later domain's tables were created beside them")
        let inspector = try ReadModelKind.adminConnection(url)
        defer { inspector.close() }
        #expect(try ReadModelKind.textColumnsNotInByteOrder(schema, on: inspector).isEmpty, "every text column compares as bytes afterwards")
    }

    /// A replica that starts while another applies gives the text columns byte order without
    /// failing a batch: altering tables a writer's transaction holds, in another order than it
    /// takes them, would deadlock it.
    @Test func textGetsByteOrderWhileAnotherReplicaApplies() async throws {
        guard let url = ReadModelKind.postgresURL else { return }
        var options = PostgresReadModels.Options()
        options.schema = ReadModelKind.uniqueName("_order")
        let applying = try ReadModelStore(backend: PostgresReadModels(url: url, options: options))
        defer { applying.close() }
        let admin = try ReadModelKind.adminConnection(url)
        defer { admin.close() }
        let textColumns = {
            try admin.query(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ? AND data_type = 'text'",
                .text(options.schema)
            ) { (table: $0.text(0), column: $0.text(1)) }
        }
        // As older builds made them: every text column in the database's collation.
        for (table, column) in try textColumns() {
            try admin.execute("ALTER TABLE \"\(options.schema)\".\"\(table)\" ALTER COLUMN \"\(column)\" TYPE TEXT COLLATE \"default\"")
        }
        var history = History()
        let batches = (0..<40).map { batch in (0..<8).map { account in history.open("a\(batch)-\(account)") } }
        let applied = Task {
            var offset: Int64 = 0
            for batch in batches {
                try await applying.apply(topic: "BankAccount", partition: 0, records: records(batch, from: offset))
                offset += Int64(batch.count)
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        let starting = try ReadModelStore(backend: PostgresReadModels(url: url, options: options))
        defer { starting.close() }
        try await applied.value
        #expect(try ReadModelKind.textColumnsNotInByteOrder(options.schema, on: admin).isEmpty)
        #expect(try starting.accounts(matching: AccountFilter(), after: nil, limit: 1000).rows.count == 40 * 8)
    }

    /// SQLite compares text as bytes; a PostgreSQL database's default collation is often a
    /// language's, which lists "a" before "B". Keyset pages must come out the same on both.
    @Test(arguments: ReadModelKind.allCases) func pagesOfAccountsComeInByteOrderOnADatabaseCollatedForALanguage(_ kind: ReadModelKind) async throws {
        var database: (name: String, admin: BlockingPostgresConnection)?
        let store: ReadModelStore
        switch kind {
        case .sqlite:
            store = try ReadModelStore(path: directory.path + "/byte-order.sqlite")
        case .postgres:
            let url = try #require(ReadModelKind.postgresURL)
            let admin = try ReadModelKind.adminConnection(url)
            // An ICU collation, so the test needs no operating-system locale.
            let name = ReadModelKind.uniqueName("_enus")
            try admin.execute(
                "CREATE DATABASE \(name) TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
            database = (name, admin)
            var components = try #require(URLComponents(string: url))
            components.path = "/" + name
            store = try ReadModelStore(backend: PostgresReadModels(url: try #require(components.string), options: .init()))
        }
        defer {
            store.close()
            if let database {
                try? database.admin.execute("DROP DATABASE \(database.name) WITH (FORCE)")
                database.admin.close()
            }
        }
        var history = History()
        let opened = ["a", "É", "c", "B"].map { history.open($0) }
        try await store.apply(topic: "BankAccount", partition: 0, records: records(opened))
        let first = try store.accounts(matching: AccountFilter(), after: nil, limit: 2)
        #expect(first.rows.map(\.accountId) == ["B", "a"])
        #expect(try store.accounts(matching: AccountFilter(), after: "a", limit: 2).rows.map(\.accountId) == ["c", "É"])
    }

    @Test func aDatabaseFromANewerProgramIsRefusedNotMigrated() throws {
        let path = directory.path + "/newer.sqlite"
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute("PRAGMA user_version = 99")
        }
        #expect { _ = try ReadModelStore(path: path) } throws: { "\($0)".contains("schema version 99, newer than this program's") }
        let projectionPath = directory.path + "/newer-projection.sqlite"
        _ = try ReadModelStore(path: projectionPath)
        try SQLiteConnection(path: projectionPath).execute("UPDATE projection_versions SET version = 7 WHERE name = 'orders'")
        #expect { _ = try ReadModelStore(path: projectionPath) } throws: {
            "\($0)".contains("the orders read model is at schema version 7, newer than this program's 1")
        }
    }
}

/// The backends every read-model test runs on. PostgreSQL joins when `JFRAME_TEST_POSTGRES_URL`
/// names a database (`Scripts/test` starts a throwaway cluster and always sets it); each store
/// lives in a schema of its own.
enum ReadModelKind: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    static let postgresURL: String? = ProcessInfo.processInfo.environment["JFRAME_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static var allCases: [ReadModelKind] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// A schema (or database) name no other test case uses: "t", 16 hex digits, then `suffix`.
    static func uniqueName(_ suffix: String = "") -> String {
        "t" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16) + suffix
    }

    /// A connection to the tests' database for looking around and setting up, beside the stores.
    static func adminConnection(_ url: String) throws -> BlockingPostgresConnection {
        BlockingPostgresConnection(settings: .init(location: try PostgresLocation(url: url), schema: "public"), logger: Logger(label: "test"))
    }

    /// The text columns of `schema` that do not compare as bytes, as "table.column".
    static func textColumnsNotInByteOrder(_ schema: String, on db: BlockingPostgresConnection) throws -> [String] {
        try db.query(
            "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = ? AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'",
            .text(schema)
        ) { $0.text(0) }
    }
}
