/// Every aggregate type of the system. A new domain is a new folder of types plus one entry
/// here; the machinery (registry, repository, handler, relay) needs no change.
public enum Domains {
    public static let aggregates: [any Aggregate.Type] = [BankAccount.self, Order.self, Job.self, Application.self]

    /// Decodes every stored event type of every domain.
    public static let registry = EventTypeRegistry(aggregates: aggregates)

    /// Broker topic per stream category (`BankAccount` -> `BankAccount`, `Order` -> `OnNewOrder`).
    public static let topics: [String: String] = Dictionary(uniqueKeysWithValues: aggregates.map { ($0.category, $0.topic) })
}
