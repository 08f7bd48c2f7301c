/// The three services' addresses: where each listens unless told otherwise, and the environment
/// variable clients (the CLI, the other services) read to find it. Defined once, here.
public enum ServiceAddress: String, Sendable, CaseIterable {
    case broker
    case commands
    case queries

    /// Where the service listens when no `--listen` (or `JFRAME_LISTEN`) is given, and where
    /// clients look for it by default.
    public var defaultAddress: String { "127.0.0.1:\(defaultPort)" }

    public var defaultPort: Int {
        switch self {
        case .broker: 9092
        case .commands: 50051
        case .queries: 50052
        }
    }

    /// The variable a client reads for the address: `CQRS_BROKER`, `CQRS_COMMANDS`, `CQRS_QUERIES`.
    public var environmentVariable: String { "CQRS_" + rawValue.uppercased() }

    /// The address a client uses: its flag, else the variable, else the default.
    public func resolve(_ flag: String?) -> String { flag ?? Environment.string(environmentVariable) ?? defaultAddress }
}
