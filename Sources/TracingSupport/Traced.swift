import Tracing

/// Spans inside a call's handling (a command's load, decide and append; a query's wait for its
/// position), only when the call's own span is recorded; and the trace context that travels with
/// an event from the command that made it, through the relay's publish, to the read models' apply.
///
/// The call's server span (RPCCore's `TracingServerInterceptor`) sets ``recording``; without a
/// tracer installed (`--otlp-endpoint` not given), or in a trace the sampler left out, nothing is
/// made per step: a span that is not recorded still costs swift-otel about 25,000 instructions
/// (callgrind), several times a command's own framing.
public enum Traced {
    /// Whether the current call's span is recorded: inner spans are made only then.
    @TaskLocal public static var recording = false

    /// The most links one messaging span carries (OpenTelemetry's default span link limit): a
    /// batch of more traced messages links to the first this many.
    public static let maxLinks = 128

    /// Runs `body` in a span named `name` when the call is recorded, else just runs it.
    /// `attributes` is evaluated only for a recorded span: built on every call, its array and
    /// strings (a command's type name made with `String(describing:)`, through reflection) were
    /// about 3% of a deposit's instructions with tracing off.
    public static func span<T>(
        _ name: String, attributes: @autoclosure () -> [(String, String)] = [], _ body: () async throws -> T
    ) async rethrows -> T {
        guard recording else { return try await body() }
        return try await withSpan(name) { span in
            for (key, value) in attributes() { span.attributes[key] = value }
            return try await body()
        }
    }

    /// The current span's W3C `traceparent` when it is recorded, to store with what it makes (an
    /// event) so that later work on it (a publish, an apply) joins its trace; nil otherwise.
    public static var currentTraceParent: String? {
        guard recording, let context = ServiceContext.current else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryCarrier())
        return carrier["traceparent"]
    }

    /// Work on a batch of messages that each may carry the `traceparent` of the span that made
    /// them (the relay publishing stored events, the projection applying records): one span of
    /// `kind`, child of the first message's context (so one command's work stays one trace) and
    /// linked to each distinct message context (OpenTelemetry's messaging conventions for
    /// batches), current while `body` runs. No message traced: no span, `body` runs as is.
    public static func messaging<T>(
        _ name: String, kind: SpanKind, messages: Int, traceParents: [String], attributes: [(String, String)] = [],
        _ body: () async throws -> T
    ) async rethrows -> T {
        guard let first = traceParents.first else { return try await body() }
        var seen = Set<String>()
        let distinct = traceParents.filter { seen.insert($0).inserted }
        return try await withSpan(name, context: context(traceParent: first), ofKind: kind) { span in
            for (key, value) in attributes { span.attributes[key] = value }
            span.attributes["messaging.batch.message_count"] = messages
            for traceParent in distinct.prefix(maxLinks) {
                span.addLink(SpanLink(context: context(traceParent: traceParent), attributes: [:]))
            }
            return try await $recording.withValue(span.isRecording) { try await body() }
        }
    }

    /// A context continuing `traceParent` (W3C Trace Context), through the installed instrument.
    static func context(traceParent: String) -> ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(["traceparent": traceParent], into: &context, using: DictionaryCarrier())
        return context
    }
}

/// Trace context in a string map (an event's stored fields, a record's headers).
struct DictionaryCarrier: Extractor, Injector {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
