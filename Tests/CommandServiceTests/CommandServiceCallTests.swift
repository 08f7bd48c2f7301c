import CommandService
import Contracts
import EventStore
import RPCCore
import TestSupport
import Testing
import WallTime

/// The CommandService's RPC services over an in-memory store, called through their generated
/// clients over the in-process transport: the wire contract without a socket or a process.
@Suite struct CommandServiceCallTests {
    let store = InMemoryEventStore(clock: ManualWallClock(1_763_899_200_000))

    var services: [any RPCService] { CommandSide.services(store: store, snapshotEvery: 100, relayStatus: { .init() }) }

    static func eur(_ minor: Int64) -> CommandsAPI.Money { .init(amountMinor: minor, currency: "EUR") }

    @Test func commandsAnswerWithTheirStreamPositionAndAreReadBackFromTheStore() async throws {
        try await InProcessServer.with(services, client: CommandsAPI.BankAccounts.Client.init) { accounts in
            let opened = try await accounts.openAccount(.init(accountId: "a", holder: "Ada", accountType: .current, openingBalance: Self.eur(100)))
            #expect(opened.streamId == "BankAccount-a" && opened.version == 1 && opened.position == 1 && !opened.duplicate)
            let deposited = try await accounts.depositFunds(.init(accountId: "a", amount: Self.eur(5), commandId: "c-1"))
            #expect(deposited.version == 2 && deposited.position == 2)
            let again = try await accounts.depositFunds(.init(accountId: "a", amount: Self.eur(5), commandId: "c-1"))
            #expect(again.duplicate && again.position == 2, "the same command id answers with its first result")
        }
        try await InProcessServer.with(services, client: CommandsAPI.EventStore.Client.init) { events in
            let page = try await events.readAll(.init(fromPosition: 1, maxCount: 10))
            #expect(page.events.map(\.position) == [1, 2])
            #expect(page.headPosition == 2 && page.nextPosition == 3)
        }
    }

    @Test func theCommandsReportNotServingWhileTheStoreRefusesAppends() async throws {
        let reporter = try #require(services.compactMap { $0 as? any ServingStatusReporting }.first)
        let names = [CommandsAPI.BankAccounts.name, CommandsAPI.Orders.name, CommandsAPI.Jobs.name, CommandsAPI.Applications.name]
        #expect(await reporter.servingStatus() == Dictionary(uniqueKeysWithValues: names.map { ($0, true) }))
        store.refuseWrites(because: "the relay found events the store lost")
        #expect(await reporter.servingStatus() == Dictionary(uniqueKeysWithValues: names.map { ($0, false) }))
    }

    @Test func refusalsCarryTheirStatusCodes() async throws {
        try await InProcessServer.with(services, client: CommandsAPI.BankAccounts.Client.init) { accounts in
            await #expect { try await accounts.depositFunds(.init(accountId: "missing", amount: Self.eur(5))) } throws: { error in
                (error as? RPCError)?.code == .notFound
            }
            _ = try await accounts.openAccount(.init(accountId: "b", holder: "Bob", accountType: .savings, openingBalance: Self.eur(0)))
            await #expect { try await accounts.depositFunds(.init(accountId: "b", amount: Self.eur(5), expectedVersion: 7)) } throws: { error in
                (error as? RPCError)?.code == .aborted
            }
            await #expect { try await accounts.depositFunds(.init(accountId: "b", amount: Self.eur(-5))) } throws: { error in
                (error as? RPCError)?.code == .invalidArgument
            }
        }
        #expect(try await store.headPosition() == 1, "refused commands stored nothing")
    }
}
