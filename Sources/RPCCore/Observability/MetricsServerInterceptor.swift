import CoreMetrics
import Synchronization
import WallTime

/// Records, per method, the calls by status code and a latency histogram, through swift-metrics.
///
/// - `rpc_server_calls_total{method, code}`: a counter per method and status code name.
/// - `rpc_server_call_duration{method}`: a timer (histogram) in nanoseconds.
///
/// Each metric is created once and kept: methods and codes are bounded sets, so the labels are.
public final class MetricsServerInterceptor: ServerInterceptor {
    private struct Key: Hashable {
        let method: String
        let code: Int
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])
    private let factory: (any MetricsFactory)?

    /// - Parameter factory: the backend; nil uses the one bootstrapped for the process.
    public init(factory: (any MetricsFactory)? = nil) { self.factory = factory }

    public func intercept(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Void
    ) async throws {
        let start = ContinuousClock.now
        let method = context.method.fullName
        var code = StatusCode.ok
        defer {
            timer(method).recordNanoseconds(Self.nanos(since: start))
            counter(method, code).increment()
        }
        do {
            try await next(context)
        } catch {
            code = (error as? RPCError)?.code ?? (error is CancellationError ? .cancelled : .unknown)
            throw error
        }
    }

    private func counter(_ method: String, _ code: StatusCode) -> Counter {
        counters.withLock { counters in
            let key = Key(method: method, code: code.rawValue)
            if let counter = counters[key] { return counter }
            let dimensions = [("method", method), ("code", code.name)]
            let counter =
                factory.map { Counter(label: "rpc_server_calls_total", dimensions: dimensions, factory: $0) }
                ?? Counter(label: "rpc_server_calls_total", dimensions: dimensions)
            counters[key] = counter
            return counter
        }
    }

    private func timer(_ method: String) -> Timer {
        timers.withLock { timers in
            if let timer = timers[method] { return timer }
            let dimensions = [("method", method)]
            let timer =
                factory.map { Timer(label: "rpc_server_call_duration", dimensions: dimensions, factory: $0) }
                ?? Timer(label: "rpc_server_call_duration", dimensions: dimensions)
            timers[method] = timer
            return timer
        }
    }

    static func nanos(since start: ContinuousClock.Instant) -> Int64 {
        (ContinuousClock.now - start).wholeNanoseconds
    }
}
