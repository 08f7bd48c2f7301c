import CoreMetrics
public import Prometheus
import Synchronization

/// The process's Prometheus registry, installed once as the swift-metrics backend, so every
/// `Counter`, `Timer` and `Gauge` the process makes lands in it.
public enum PrometheusExposition {
    /// The content type of the text format (version 0.0.4), which every Prometheus server reads.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Latency buckets, in seconds: ours are microseconds to seconds (an RPC on loopback takes
    /// about 100 µs, an fdatasync 0.1–10 ms, a long-poll seconds), so swift-prometheus's default
    /// (5 ms and up) would put nearly everything in its first bucket.
    public static let durationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// Buckets for counts (how many appends one group commit wrote).
    public static let countBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    private static let installed = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Installs the registry as the process's metrics backend the first time; returns it every time.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        installed.withLock { installed in
            if let installed { return installed }
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.defaultDurationHistogramBuckets = durationBuckets
            factory.defaultValueHistogramBuckets = countBuckets
            MetricsSystem.bootstrap(factory)
            installed = registry
            return registry
        }
    }
}
