import Tracing

/// Spans inside a call's handling (a command's load, decide and append; a query's wait for its
/// position), when the process exports traces.
///
/// Checked once: without a tracer installed (`--otlp-endpoint` not given) nothing is bound or
/// allocated per command, where swift-distributed-tracing's no-op path would still bind a task
/// local for every span.
public enum Traced {
    public static let enabled: Bool = !(InstrumentationSystem.tracer is NoOpTracer)

    public static func span<T>(
        _ name: String, attributes: [(String, String)] = [], _ body: () async throws -> T
    ) async rethrows -> T {
        guard enabled else { return try await body() }
        return try await withSpan(name) { span in
            for (key, value) in attributes { span.attributes[key] = value }
            return try await body()
        }
    }
}
