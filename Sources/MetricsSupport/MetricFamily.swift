public import CoreMetrics
import Synchronization

/// The metrics of one name, one per tuple of label values, each made once and kept.
///
/// swift-metrics hands back a new object from every `Counter(label:dimensions:)`, and its
/// backends look the name and labels up under a lock each time; a hot path that labels by topic
/// or method asks the family instead, which keeps the handles. Label sets must stay bounded (topics,
/// partitions, methods, status codes), as Prometheus asks of every label.
public final class MetricFamily<Metric: Sendable>: Sendable {
    private let labelNames: [String]
    private let make: @Sendable (_ dimensions: [(String, String)]) -> Metric
    private let metrics = Mutex<[[String]: Metric]>([:])

    /// - Parameters:
    ///   - labelNames: the labels, in the order ``callAsFunction(_:)`` takes their values.
    ///   - make: makes the metric for one set of dimensions (for example
    ///     `{ Counter(label: "x_total", dimensions: $0) }`).
    public init(labelNames: [String], make: @escaping @Sendable (_ dimensions: [(String, String)]) -> Metric) {
        self.labelNames = labelNames
        self.make = make
    }

    /// The metric for these label values (as many as the family has label names).
    public func callAsFunction(_ values: String...) -> Metric { metric(values) }

    /// The metric for these label values (as many as the family has label names).
    public func metric(_ values: [String]) -> Metric {
        precondition(values.count == labelNames.count, "\(labelNames.count) label values expected, got \(values.count)")
        return metrics.withLock { metrics in
            if let metric = metrics[values] { return metric }
            let metric = make(Array(zip(labelNames, values)))
            metrics[values] = metric
            return metric
        }
    }
}

extension MetricFamily where Metric == Counter {
    /// Counters named `label` (Prometheus: ending in `_total`), through `factory` or the process's backend.
    public static func counters(_ label: String, labels: [String], factory: (any MetricsFactory)? = nil) -> MetricFamily<Counter> {
        MetricFamily(labelNames: labels) { dimensions in
            factory.map { Counter(label: label, dimensions: dimensions, factory: $0) } ?? Counter(label: label, dimensions: dimensions)
        }
    }
}

extension MetricFamily where Metric == CoreMetrics.Timer {
    /// Histograms of durations named `label` (Prometheus: ending in `_seconds`).
    public static func timers(_ label: String, labels: [String], factory: (any MetricsFactory)? = nil) -> MetricFamily<CoreMetrics.Timer> {
        MetricFamily(labelNames: labels) { dimensions in
            factory.map { CoreMetrics.Timer(label: label, dimensions: dimensions, factory: $0) }
                ?? CoreMetrics.Timer(label: label, dimensions: dimensions)
        }
    }
}

extension MetricFamily where Metric == Gauge {
    /// Gauges named `label`: values set, not summed.
    public static func gauges(_ label: String, labels: [String], factory: (any MetricsFactory)? = nil) -> MetricFamily<Gauge> {
        MetricFamily(labelNames: labels) { dimensions in
            factory.map { Gauge(label: label, dimensions: dimensions, factory: $0) } ?? Gauge(label: label, dimensions: dimensions)
        }
    }
}
