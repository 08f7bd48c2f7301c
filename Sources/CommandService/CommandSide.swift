import CommandHandling
import Domain
import EventStore
import Logging
import Outbox
import RPCCore
import WallTime

/// The CommandService's RPC services over one event store, assembled as the binary serves them.
public enum CommandSide {
    /// The services that take commands (their health follows the store's).
    static let commandServiceNames = [
        CommandsAPI.BankAccounts.name, CommandsAPI.Orders.name, CommandsAPI.Jobs.name, CommandsAPI.Applications.name,
    ]

    /// The RPC services of the CommandService.
    public static func services(
        store: any EventStore, snapshotEvery: Int, clock: any WallClock = SystemWallClock(), relayStatus: @escaping @Sendable () -> OutboxRelay.Status
    ) -> [any RPCService] {
        var options = AggregateRepository.Options()
        options.snapshotEvery = snapshotEvery
        let repository = AggregateRepository(store: store, registry: Domains.registry, options: options)
        let gateway = CommandGateway(mediator: .commandSide(store: store, repository: repository, clock: clock))
        return [
            BankAccountsService(gateway: gateway), OrdersService(gateway: gateway), JobsService(gateway: gateway),
            ApplicationsService(gateway: gateway, repository: repository),
            EventStoreService(store: store, relayStatus: relayStatus),
        ]
    }
}
