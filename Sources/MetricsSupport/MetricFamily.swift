public import CoreMetrics
public import Synchronization

/// The metrics of one name, one per tuple of label values, each made once and kept.
///
/// swift-metrics hands back a new object from every `Counter(label:dimensions:)`, and its
/// backends look the name and labels up under a lock each time; a hot path that labels by topic
/// or method asks the family instead, which keeps the handles. Up to four labels, passed as
/// arguments (no array is made per lookup). Label sets must stay bounded (topics, partitions,
/// methods, status codes), as Prometheus asks of every label.
public final class MetricFamily<Metric: Sendable>: Sendable {
    /// Up to four label values, inline: hashing them costs no allocation.
    @usableFromInline struct Values: Hashable, Sendable {
        @usableFromInline var a = "", b = "", c = "", d = ""
        @usableFromInline var count = 0

        @inlinable init(a: String = "", b: String = "", c: String = "", d: String = "", count: Int) {
            (self.a, self.b, self.c, self.d, self.count) = (a, b, c, d, count)
        }
    }

    @usableFromInline let labelNames: [String]
    @usableFromInline let make: @Sendable (_ dimensions: [(String, String)]) -> Metric
    /// Inlinable, so a caller's module specializes the lookup for its metric type (unspecialized
    /// generic dictionary code cost thousands of instructions per lookup, measured with callgrind).
    @usableFromInline let metrics = Mutex<[Values: Metric]>([:])

    /// - Parameters:
    ///   - labelNames: the labels (at most four), in the order the lookups take their values.
    ///   - make: makes the metric for one set of dimensions (for example
    ///     `{ Counter(label: "x_total", dimensions: $0) }`).
    public init(labelNames: [String], make: @escaping @Sendable (_ dimensions: [(String, String)]) -> Metric) {
        precondition(labelNames.count <= 4, "at most four labels")
        self.labelNames = labelNames
        self.make = make
    }

    @inlinable public func callAsFunction(_ a: String) -> Metric { metric(Values(a: a, count: 1)) }
    @inlinable public func callAsFunction(_ a: String, _ b: String) -> Metric { metric(Values(a: a, b: b, count: 2)) }
    @inlinable public func callAsFunction(_ a: String, _ b: String, _ c: String) -> Metric { metric(Values(a: a, b: b, c: c, count: 3)) }
    @inlinable public func callAsFunction(_ a: String, _ b: String, _ c: String, _ d: String) -> Metric {
        metric(Values(a: a, b: b, c: c, d: d, count: 4))
    }

    @inlinable func metric(_ values: Values) -> Metric {
        precondition(values.count == labelNames.count, "\(labelNames.count) label values expected, got \(values.count)")
        return metrics.withLock { metrics in
            if let metric = metrics[values] { return metric }
            let metric = make(Array(zip(labelNames, [values.a, values.b, values.c, values.d])))
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
