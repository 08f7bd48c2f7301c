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
