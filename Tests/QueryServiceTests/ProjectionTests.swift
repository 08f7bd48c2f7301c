import CommandHandling
import Domain
import EventBus
import EventStore
import Foundation
import Logging
import Outbox
import QueryService
import ReadModels
import TestSupport
import Testing
import WallTime

/// The whole path from a command to a read model in one process: mediator, event store, relay,
/// the in-memory bus and the projection, with no broker and no socket.
struct Pipeline {
    let events = InMemoryEventStore(clock: ManualWallClock(1_763_899_200_000))
    let bus = InMemoryEventBus(clock: ManualWallClock(1_763_899_200_000))
    let directory = TemporaryDirectory(prefix: "projection")
    let models: ReadModelStore
    let mediator: Mediator

    init() throws {
        models = try ReadModelStore(path: directory.path + "/readmodels.sqlite")
        mediator = .commandSide(
            store: events, repository: AggregateRepository(store: events, registry: Domains.registry), clock: ManualWallClock(1_763_899_200_000))
    }

    func send<C: AggregateCommand>(_ command: C) async throws {
        _ = try await mediator.send(
            command, context: CommandContext(commandId: UUID().uuidString, correlationId: "corr", expectedVersion: nil, logger: Logger(label: "test"))
        )
    }

    func projection(group: String = "query-service") -> Projection {
        var options = Projection.Options()
        options.group = group
        options.maxWait = .milliseconds(50)
        return Projection(store: models, bus: bus, topics: QuerySide.topics, options: options)
    }

    /// Runs a relay and a projection (group `query-service`) until the returned tasks are cancelled.
    func startRelayAndProjection() -> (projection: Projection, tasks: [Task<Void, any Error>]) {
        let relay = OutboxRelay(store: events, bus: bus, topics: Domains.topics)
        let projection = projection()
        return (projection, [Task { try await relay.run() }, Task { try await projection.run() }])
    }

    func stop() {
        models.close()
        directory.cleanup()
    }
}

func eur(_ minor: Int64) -> Money { Money(amountMinor: minor, currency: "EUR") }

@Suite struct ProjectionTests {
    @Test func commandsReachTheReadModelsThroughTheRelayAndTheBus() async throws {
        let pipeline = try Pipeline()
        defer { pipeline.stop() }
        let (projection, running) = pipeline.startRelayAndProjection()
        defer { for task in running { task.cancel() } }

        try await pipeline.send(OpenAccount(accountId: "a", holder: "Ada", accountType: .current, openingBalance: eur(1000)))
        for amount in 1...5 { try await pipeline.send(DepositFunds(accountId: "a", amount: eur(Int64(amount)))) }
        try await pipeline.send(OpenAccount(accountId: "b", holder: "Bob", accountType: .savings, openingBalance: eur(7)))
        let head = try await pipeline.events.headPosition()
        #expect(await pipeline.models.waitForPosition(head, timeout: .seconds(60)), "read your writes at the store's head")
        #expect(try pipeline.models.account("a")?.balanceMinor == 1015)
        #expect(try pipeline.models.account("b")?.holder == "Bob")
        #expect(projection.status.brokerConnected && projection.status.lastError == nil)
        let offsets = try await pipeline.models.partitionOffsets()
        #expect(offsets.map(\.nextOffset).reduce(0, +) == head, "the offsets stored with the models cover every record")
    }

    @Test func aRecordDeliveredTwiceAndAMemberStartedAgainChangeNothing() async throws {
        let pipeline = try Pipeline()
        defer { pipeline.stop() }
        let relay = OutboxRelay(store: pipeline.events, bus: pipeline.bus, topics: Domains.topics)
        let publishing = Task { try await relay.run() }
        defer { publishing.cancel() }
        try await pipeline.send(OpenAccount(accountId: "a", holder: "Ada", accountType: .current, openingBalance: eur(100)))
        try await pipeline.send(DepositFunds(accountId: "a", amount: eur(5)))
        try await waitUntil { relay.status.publishedPosition == 2 }
        // The same records again, as a producer retry or a republish would put them.
        let topic = try #require(Domains.topics["BankAccount"])
        let copies = try await pipeline.bus.allRecords(of: topic).map {
            OutgoingRecord(key: $0.key, value: $0.value, headers: $0.headers, partition: $0.partition)
        }
        try await pipeline.bus.producer(for: topic, onRetry: nil).send(copies)

        let first = pipeline.projection()
        let consuming = Task { try await first.run() }
        try await waitUntil {
            try await pipeline.models.partitionOffsets().map(\.nextOffset).reduce(0, +) == 4
        }
        #expect(try pipeline.models.account("a")?.balanceMinor == 105, "the copies changed nothing")
        consuming.cancel()
        _ = try? await consuming.value

        // A member of another group starts from the offsets stored with the models, not from 0.
        try await pipeline.send(DepositFunds(accountId: "a", amount: eur(1)))
        let second = pipeline.projection(group: "another")
        let again = Task { try await second.run() }
        defer { again.cancel() }
        #expect(await pipeline.models.waitForPosition(3, timeout: .seconds(60)))
        #expect(try pipeline.models.account("a")?.balanceMinor == 106)
        #expect(try pipeline.models.counts().parked == 0)
    }
}
