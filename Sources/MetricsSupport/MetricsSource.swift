/// Something whose metrics are read off its state when they are scraped rather than counted as
/// they happen: sizes, positions and lags (a partition's high watermark, a consumer group's lag,
/// the relay's distance behind the store), which are cheap to read and would cost a hot path
/// to keep current.
///
/// The metrics endpoint calls every source before it renders the page; a source sets gauges.
public protocol MetricsSource: Sendable {
    /// Sets this source's gauges to the values of now.
    func updateMetrics() async
}
