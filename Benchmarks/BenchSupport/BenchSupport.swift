import Foundation

/// What the benchmark executables share: their one-JSON-line output and percentiles.

/// The value at fraction `p` (0...1) of an ascending array; 0 when empty.
public func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

/// Prints one JSON object (keys sorted) as one line and flushes, so scripts read results as they come.
public func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)
}

extension Duration {
    /// The duration in seconds, as a Double (for rates).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// What a closed-loop run measured: every call's latency (µs, ascending) and the wall time.
public struct ClosedLoopResult: Sendable {
    public var latenciesUs: [Double]
    public var wallSeconds: Double

    public var callsPerSecond: Double { (Double(latenciesUs.count) / wallSeconds).rounded() }

    /// The fields every closed-loop case reports: calls, calls/s, p50 and p99 in µs.
    public var fields: [String: Any] {
        [
            "calls": latenciesUs.count, "calls_per_s": callsPerSecond, "p50_us": percentile(latenciesUs, 0.5).rounded(),
            "p99_us": percentile(latenciesUs, 0.99).rounded(),
        ]
    }
}

/// `concurrency` workers, each calling `call` in a loop for `seconds` (worker w makes calls w,
/// w + concurrency, ...), timing every call.
public func closedLoop(concurrency: Int, seconds: Double, _ call: @escaping @Sendable (_ worker: Int, _ index: Int) async throws -> Void) async throws
    -> ClosedLoopResult
{
    let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let started = ContinuousClock.now
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                var mine: [Double] = []
                var index = worker
                while ContinuousClock.now < end {
                    let begun = ContinuousClock.now
                    try await call(worker, index)
                    mine.append((ContinuousClock.now - begun).seconds * 1e6)
                    index += concurrency
                }
                return mine
            }
        }
        return try await group.reduce(into: [Double]()) { $0 += $1 }.sorted()
    }
    return ClosedLoopResult(latenciesUs: latencies, wallSeconds: (ContinuousClock.now - started).seconds)
}
