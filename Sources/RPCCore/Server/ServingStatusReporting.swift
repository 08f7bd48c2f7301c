/// A service that can be up and still unable to serve: its store is away, or it has not caught up.
///
/// The server asks every reporter about once a second and sets the health service's answer for
/// each service it names (`jframe.health.v1.Health`), and for the server as a whole (`""`):
/// NOT_SERVING while any service says it cannot serve. Load balancers, orchestrators and
/// `cqrs health` then see what callers would meet, not just a process that listens.
public protocol ServingStatusReporting: Sendable {
    /// For each service this reporter speaks for (its full name, `cqrs.commands.v1.BankAccounts`),
    /// whether it can serve now.
    func servingStatus() async -> [String: Bool]
}
