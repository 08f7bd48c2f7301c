import Domain
public import EventBus
import RPCCore
import ReadModels

/// The QueryService's RPC services over one read-model store, assembled as the binary serves them.
public enum QuerySide {
    /// The topics the projection follows: every domain's event topic.
    public static let topics = Array(Set(Domains.topics.values)).sorted()

    /// The services that answer queries (their health follows the read models').
    static let queryServiceNames = [
        QueriesAPI.Accounts.name, QueriesAPI.Orders.name, QueriesAPI.Customers.name, QueriesAPI.Jobs.name, QueriesAPI.Applications.name,
    ]

    public static func services(
        store: ReadModelStore, projection: Projection?, bus: (any EventTopics)?, commands: RPCClient, readyWhenCaughtUp: Bool = false
    ) -> [any RPCService] {
        [
            AccountsService(store: store), OrdersService(store: store), CustomersService(store: store), JobsService(store: store),
            ApplicationsService(store: store),
            ReadModelsService(store: store, projection: projection, bus: bus, commands: commands, readyWhenCaughtUp: readyWhenCaughtUp),
        ]
    }
}
