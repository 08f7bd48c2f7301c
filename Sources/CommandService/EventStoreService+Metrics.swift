import EventStore
import Metrics
public import MetricsSupport
import Outbox

/// The command side's positions as gauges, read when scraped:
///
/// - `eventstore_head_position`: the store's last position.
/// - `relay_published_position`: the last position the relay published (on a replica standing
///   by, the lease holder's checkpoint in the shared store).
/// - `relay_lag_events`: head minus published, the events stored and not yet on the bus.
/// - `relay_broker_connected`: 1 while the relay reaches the broker.
/// - `relay_standing_by`: 1 while another replica holds the relay's lease.
extension EventStoreService: MetricsSource {
    private static let head = Gauge(label: "eventstore_head_position")
    private static let published = Gauge(label: "relay_published_position")
    private static let lag = Gauge(label: "relay_lag_events")
    private static let connected = Gauge(label: "relay_broker_connected")
    private static let standingBy = Gauge(label: "relay_standing_by")

    public func updateMetrics() async {
        // While the store is away the last values stay.
        guard let relay = try? await relayProgress(), let head = try? await store.headPosition() else { return }
        Self.connected.record(relay.brokerConnected ? 1 : 0)
        Self.standingBy.record(relay.standingBy ? 1 : 0)
        Self.head.record(head)
        Self.published.record(relay.publishedPosition)
        Self.lag.record(max(0, head - relay.publishedPosition))
    }
}
