import Tracing

/// Spans inside a call's handling (a command's load, decide and append; a query's wait for its
/// position), only when the call's own span is recorded.
///
/// The call's server span (RPCCore's `TracingServerInterceptor`) sets ``recording``; without a
/// tracer installed (`--otlp-endpoint` not given), or in a trace the sampler left out, nothing is
/// made per step: a span that is not recorded still costs swift-otel about 25,000 instructions
/// (callgrind), several times a command's own framing.
public enum Traced {
    /// Whether the current call's span is recorded: inner spans are made only then.
    @TaskLocal public static var recording = false

    public static func span<T>(
        _ name: String, attributes: [(String, String)] = [], _ body: () async throws -> T
    ) async rethrows -> T {
        guard recording else { return try await body() }
        return try await withSpan(name) { span in
            for (key, value) in attributes { span.attributes[key] = value }
            return try await body()
        }
    }
}
