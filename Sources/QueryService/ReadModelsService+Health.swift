public import RPCCore

/// The queries are served while the read models can be read; with `readyWhenCaughtUp`, not
/// before every partition they follow first had no lag after start (a replica that joins late
/// does not answer from models far behind). Once caught up it stays serving: lag that comes and
/// goes under load is what `minPosition` is for.
extension ReadModelsService: ServingStatusReporting {
    public func servingStatus() async -> [String: Bool] {
        let names = QuerySide.queryServiceNames
        guard let status = try? await status() else { return Dictionary(uniqueKeysWithValues: names.map { ($0, false) }) }
        var serving = true
        if readyWhenCaughtUp, !caughtUpOnce.load(ordering: .relaxed) {
            let caughtUp = status.brokerConnected && !status.partitions.isEmpty && status.partitions.allSatisfy { $0.lag == 0 }
            if caughtUp { caughtUpOnce.store(true, ordering: .relaxed) } else { serving = false }
        }
        return Dictionary(uniqueKeysWithValues: names.map { ($0, serving) })
    }
}
