import Contracts
import Metrics
public import MetricsSupport

/// The query side's progress as gauges, read when scraped (the same figures as GetStatus):
///
/// - `projection_applied_offset{topic, partition}`, `projection_high_watermark{…}` and
///   `projection_lag_records{…}`: per partition, the next offset the read models will apply, the
///   broker's high watermark, and the records between them.
/// - `projection_applied_position`: the highest store position the read models handled (what
///   a query's `minPosition` waits for).
/// - `readmodel_parked_events`: events parked for a person to retry or skip.
/// - `projection_broker_connected`: 1 while the broker answers.
extension ReadModelsService: MetricsSource {
    private static let appliedOffsets = MetricFamily.gauges("projection_applied_offset", labels: ["topic", "partition"])
    private static let highWatermarks = MetricFamily.gauges("projection_high_watermark", labels: ["topic", "partition"])
    private static let lags = MetricFamily.gauges("projection_lag_records", labels: ["topic", "partition"])
    private static let appliedPosition = Gauge(label: "projection_applied_position")
    private static let parked = Gauge(label: "readmodel_parked_events")
    private static let connected = Gauge(label: "projection_broker_connected")

    public func updateMetrics() async {
        guard let status = try? await status() else { return }  // the store is away: the last values stay
        for partition in status.partitions {
            let (topic, number) = (partition.topic, String(partition.partition))
            Self.appliedOffsets(topic, number).record(partition.appliedOffset)
            if let highWatermark = partition.highWatermark { Self.highWatermarks(topic, number).record(highWatermark) }
            if let lag = partition.lag { Self.lags(topic, number).record(lag) }
        }
        Self.appliedPosition.record(status.appliedPosition)
        Self.parked.record(status.parkedEvents)
        Self.connected.record(status.brokerConnected ? 1 : 0)
    }
}

/// A rebuild's progress as gauges, set as it goes: `readmodel_rebuild_running` (0 or 1),
/// `readmodel_rebuild_events_applied` and `readmodel_rebuild_head_position` (the store's head the
/// rebuild is catching up to), so a dashboard shows how far a rebuild has come.
enum RebuildMetrics {
    private static let running = Gauge(label: "readmodel_rebuild_running")
    private static let applied = Gauge(label: "readmodel_rebuild_events_applied")
    private static let head = Gauge(label: "readmodel_rebuild_head_position")

    static func started() {
        running.record(1)
        applied.record(0)
    }

    static func progressed(_ progress: QueriesAPI.RebuildProgress) {
        applied.record(progress.eventsApplied)
        head.record(progress.headPosition)
    }

    static func ended() { running.record(0) }
}
