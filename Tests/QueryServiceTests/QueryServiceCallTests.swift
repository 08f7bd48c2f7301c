import Contracts
import Domain
import EventBus
import Outbox
import QueryService
import RPCCore
import TestSupport
import Testing

/// The QueryService's RPC services over read models that the in-memory pipeline fills, called
/// through their generated clients over the in-process transport.
@Suite struct QueryServiceCallTests {
    @Test func readYourWritesStatusAndRefusalsOverTheWire() async throws {
        let pipeline = try Pipeline()
        defer { pipeline.stop() }
        let (projection, running) = pipeline.startRelayAndProjection()
        defer { for task in running { task.cancel() } }
        try await pipeline.send(OpenAccount(accountId: "a", holder: "Ada", accountType: .current, openingBalance: eur(1000)))
        try await pipeline.send(DepositFunds(accountId: "a", amount: eur(25)))
        let head = try await pipeline.events.headPosition()

        // The commands upstream is only asked by a rebuild, which this suite does not run.
        let services = QuerySide.services(
            store: pipeline.models, projection: projection, bus: pipeline.bus, commands: RPCClient(transport: NoUpstream()))
        try await InProcessServer.with(services, client: { $0 }) { client in
            let accounts = QueriesAPI.Accounts.Client(client)
            let account = try await accounts.getAccount(.init(accountId: "a", minPosition: head))
            #expect(account.balance == CommandsAPI.Money(amountMinor: 1025, currency: "EUR") && account.version == 2 && account.position == head)
            await #expect { try await accounts.getAccount(.init(accountId: "nobody")) } throws: { ($0 as? RPCError)?.code == .notFound }
            await #expect {
                try await accounts.getAccount(.init(accountId: "a", minPosition: head + 10), options: CallOptions(timeout: .milliseconds(50)))
            } throws: { ($0 as? RPCError)?.code == .deadlineExceeded }

            let status = try await QueriesAPI.ReadModels.Client(client).getStatus(.init())
            #expect(status.appliedPosition == head && status.accounts == 1 && status.parkedEvents == 0)
            #expect(status.partitions.map(\.lag).allSatisfy { $0 == 0 }, "lag from the bus's partition bounds")
        }
    }
}

/// A client transport with nothing behind it.
struct NoUpstream: ClientTransport {
    func connect(_ makeReceiver: @escaping @Sendable (any FrameChannel) -> any FrameReceiver) async throws -> any FrameReceiver {
        throw RPCError(code: .unavailable, message: "no upstream in this test")
    }
}
