import BrokerCore
import CoreMetrics
import LogStorage
import MetricsSupport

/// Records and bytes in and out, per topic, counted as requests are served:
/// `broker_produced_records_total`, `broker_produced_bytes_total`, `broker_fetched_records_total`,
/// `broker_fetched_bytes_total` (Fetch and Subscribe both). Bytes are keys plus values, the
/// payload a client sent or received, not the stored batch.
/// A retried produce that appended nothing (a duplicate) is not counted again.
final class BrokerTraffic: Sendable {
    static let shared = BrokerTraffic()

    private let producedRecords = MetricFamily.counters("broker_produced_records_total", labels: ["topic"])
    private let producedBytes = MetricFamily.counters("broker_produced_bytes_total", labels: ["topic"])
    private let fetchedRecords = MetricFamily.counters("broker_fetched_records_total", labels: ["topic"])
    private let fetchedBytes = MetricFamily.counters("broker_fetched_bytes_total", labels: ["topic"])

    func produced(_ records: [ProduceInput], topic: String) {
        var bytes = 0
        for record in records { bytes += (record.key?.utf8.count ?? 0) + (record.value?.count ?? 0) }
        producedRecords(topic).increment(by: records.count)
        producedBytes(topic).increment(by: bytes)
    }

    func fetched(_ records: [Record], topic: String) {
        guard !records.isEmpty else { return }
        var bytes = 0
        for record in records { bytes += (record.key?.count ?? 0) + (record.value?.count ?? 0) }
        fetchedRecords(topic).increment(by: records.count)
        fetchedBytes(topic).increment(by: bytes)
    }
}

/// The broker's state as gauges, read when scraped: per partition its size on disk, high
/// watermark, log start offset and whether it is offline; per consumer group and partition its
/// lag (records between the committed offset and the high watermark).
extension BrokerService: MetricsSource {
    private static let sizes = MetricFamily.gauges("broker_partition_log_size_bytes", labels: ["topic", "partition"])
    private static let highWatermarks = MetricFamily.gauges("broker_partition_high_watermark", labels: ["topic", "partition"])
    private static let startOffsets = MetricFamily.gauges("broker_partition_log_start_offset", labels: ["topic", "partition"])
    private static let offline = MetricFamily.gauges("broker_partition_offline", labels: ["topic", "partition"])
    private static let lags = MetricFamily.gauges("broker_consumer_group_lag", labels: ["group", "topic", "partition"])

    public func updateMetrics() async {
        for topic in broker.allTopics() {
            for (index, state) in topic.partitions.enumerated() {
                let partition = String(index)
                switch state {
                case .online(let log):
                    Self.sizes(topic.name, partition).record(log.sizeInBytes)
                    Self.highWatermarks(topic.name, partition).record(log.highWatermark)
                    Self.startOffsets(topic.name, partition).record(log.logStartOffset)
                    Self.offline(topic.name, partition).record(0)
                case .failed:
                    Self.offline(topic.name, partition).record(1)
                }
            }
        }
        for name in broker.groups.groupNames() {
            guard let snapshot = broker.groups.snapshot(group: name) else { continue }
            for lag in Self.lags(of: snapshot, in: broker) {
                Self.lags(name, lag.topic, String(lag.partition)).record(lag.lag)
            }
        }
    }
}
