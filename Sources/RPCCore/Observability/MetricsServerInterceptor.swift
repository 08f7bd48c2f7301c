import CoreMetrics
import MetricsSupport
import Synchronization
import WallTime

/// Records every call by transport, service, method and status code, and its latency as a
/// histogram, through swift-metrics (Prometheus names: base units, `_total` counters).
///
/// - `rpc_server_calls_total{transport, service, method, code}`: calls ended, by status code name.
/// - `rpc_server_call_duration_seconds{transport, service, method}`: from the call's first frame
///   to its status.
///
/// One lookup per call: a method's histogram and its counters (indexed by status code) are kept
/// together, made once.
public final class MetricsServerInterceptor: ServerInterceptor {
    /// A method's metrics: its histogram, and a counter per status code made on first use.
    final class MethodMetrics: Sendable {
        let duration: CoreMetrics.Timer
        let counters: Mutex<[Counter?]>
        let makeCounter: @Sendable (StatusCode) -> Counter

        init(duration: CoreMetrics.Timer, makeCounter: @escaping @Sendable (StatusCode) -> Counter) {
            self.duration = duration
            self.makeCounter = makeCounter
            counters = Mutex(Array(repeating: nil, count: 17))
        }

        func calls(_ code: StatusCode) -> Counter {
            let index = Int(code.rawValue)
            guard (0..<17).contains(index) else { return makeCounter(code) }
            return counters.withLock { counters in
                if let counter = counters[index] { return counter }
                let counter = makeCounter(code)
                counters[index] = counter
                return counter
            }
        }
    }

    private let methods: MetricFamily<MethodMetrics>

    /// - Parameters:
    ///   - transport: the `transport` label: `jframe` for the framed TCP port, `http2` for the edge.
    ///   - factory: the backend; nil uses the one bootstrapped for the process.
    public init(transport: String = "jframe", factory: (any MetricsFactory)? = nil) {
        let calls = MetricFamily.counters("rpc_server_calls_total", labels: ["transport", "service", "method", "code"], factory: factory)
        let durations = MetricFamily.timers("rpc_server_call_duration_seconds", labels: ["transport", "service", "method"], factory: factory)
        methods = MetricFamily(labelNames: ["service", "method"]) { dimensions in
            let (service, method) = (dimensions[0].1, dimensions[1].1)
            return MethodMetrics(duration: durations(transport, service, method)) { code in calls(transport, service, method, code.name) }
        }
    }

    public func intercept(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Void
    ) async throws {
        let start = ContinuousClock.now
        let metrics = methods(context.method.service, context.method.method)
        var code = StatusCode.ok
        defer {
            metrics.duration.recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
            metrics.calls(code).increment()
        }
        do {
            try await next(context)
        } catch {
            code = ServerConnection.statusCode(for: error)
            throw error
        }
    }
}
