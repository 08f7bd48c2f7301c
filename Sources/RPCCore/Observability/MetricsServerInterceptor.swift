import CoreMetrics
import MetricsSupport
import WallTime

/// Records every call by transport, service, method and status code, and its latency as a
/// histogram, through swift-metrics (Prometheus names: base units, `_total` counters).
///
/// - `rpc_server_calls_total{transport, service, method, code}`: calls ended, by status code name.
/// - `rpc_server_call_duration_seconds{transport, service, method}`: from the call's first frame
///   to its status.
///
/// Methods and codes are bounded sets, so the labels are; each metric is made once and kept.
public final class MetricsServerInterceptor: ServerInterceptor {
    private let transport: String
    private let calls: MetricFamily<Counter>
    private let durations: MetricFamily<CoreMetrics.Timer>

    /// - Parameters:
    ///   - transport: the `transport` label: `jframe` for the framed TCP port, `http2` for the edge.
    ///   - factory: the backend; nil uses the one bootstrapped for the process.
    public init(transport: String = "jframe", factory: (any MetricsFactory)? = nil) {
        self.transport = transport
        calls = .counters("rpc_server_calls_total", labels: ["transport", "service", "method", "code"], factory: factory)
        durations = .timers("rpc_server_call_duration_seconds", labels: ["transport", "service", "method"], factory: factory)
    }

    public func intercept(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Void
    ) async throws {
        let start = ContinuousClock.now
        let method = context.method
        var code = StatusCode.ok
        defer {
            durations(transport, method.service, method.method).recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
            calls(transport, method.service, method.method, code.name).increment()
        }
        do {
            try await next(context)
        } catch {
            code = ServerConnection.statusCode(for: error)
            throw error
        }
    }
}
