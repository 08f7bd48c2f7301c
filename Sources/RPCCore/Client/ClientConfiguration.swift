import WallTime

/// The settings of an ``RPCClient``.
public struct ClientConfiguration: Sendable {
    public var limits: ConnectionLimits = .defaults
    /// Reconnect backoff: the wait after the first failed attempt ...
    public var initialBackoff: Duration = .milliseconds(100)
    /// ... multiplied by this after each further failure ...
    public var backoffMultiplier: Double = 1.6
    /// ... up to this, with ±20% jitter so that many clients do not reconnect in step.
    /// (How long one attempt may take is the transport's setting, e.g. `TCPClientTransport`'s.)
    public var maxBackoff: Duration = .seconds(5)

    public init() {}

    public static var defaults: ClientConfiguration { ClientConfiguration() }

    /// The wait before the attempt that follows `failures` failed attempts in a row.
    public func backoff(afterFailures failures: Int) -> Duration {
        let base = initialBackoff.seconds
        let cap = maxBackoff.seconds
        let growth = repeatElement(backoffMultiplier, count: max(0, failures - 1)).reduce(1, *)
        let grown = min(cap, base * growth)
        return .milliseconds(Int64(grown * 1000 * Double.random(in: 0.8...1.2)))
    }
}
