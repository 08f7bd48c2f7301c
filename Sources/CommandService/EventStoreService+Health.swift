import EventStore
public import RPCCore

/// The commands are served while the store takes appends: not while it refuses them (DATA_LOSS,
/// until repaired) nor while it cannot be reached (a PostgreSQL store whose database is away).
/// The event store's own read methods are left to the server's overall status.
extension EventStoreService: ServingStatusReporting {
    public func servingStatus() async -> [String: Bool] {
        let reachable = (try? await store.headPosition()) != nil
        let serving = reachable && store.writeRefusal == nil
        return Dictionary(uniqueKeysWithValues: CommandSide.commandServiceNames.map { ($0, serving) })
    }
}
