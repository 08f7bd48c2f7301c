import Tracing
import TracingSupport

/// Continues the caller's trace, or starts one, with a server span per call (W3C Trace Context:
/// `traceparent` and `tracestate` in the call's metadata; on the HTTP/2 edge the request's headers
/// are its metadata, so gRPC and Connect clients' headers continue the trace the same way).
///
/// The span is named `package.Service/Method` and carries the OpenTelemetry RPC attributes
/// (`rpc.system` `jframe`, `rpc.service`, `rpc.method`, `rpc.jframe.status_code`); it is the
/// task's current span while the handler runs, so its own spans and its outgoing calls nest in it.
public struct TracingServerInterceptor: ServerInterceptor {
    public init() {}

    public func intercept(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Void
    ) async throws {
        var parent = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(context.metadata, into: &parent, using: MetadataCarrier())
        try await withSpan(context.method.fullName, context: parent, ofKind: .server) { span in
            span.attributes["rpc.system"] = "jframe"
            span.attributes["rpc.service"] = context.method.service
            span.attributes["rpc.method"] = context.method.method
            do {
                try await Traced.$recording.withValue(span.isRecording) { try await next(context) }
                span.attributes["rpc.jframe.status_code"] = 0
            } catch {
                let code = ServerConnection.statusCode(for: error)
                span.attributes["rpc.jframe.status_code"] = code.rawValue
                span.setStatus(SpanStatus(code: Self.isServerFault(code) ? .error : .ok))
                throw error
            }
        }
    }

    /// The codes OpenTelemetry's RPC conventions count as the server's failure (the others are
    /// the caller's business: a refused command is the system working).
    static func isServerFault(_ code: StatusCode) -> Bool {
        [.unknown, .deadlineExceeded, .unimplemented, .internalError, .unavailable, .dataLoss].contains(code)
    }
}

/// Carries the current trace to the server: within a traced operation (a server span, a span
/// of the caller's own), each call gets a client span whose context goes out as `traceparent`
/// in the call's metadata. In a service, calls made outside any trace (a consumer's long polls,
/// a relay's background publishing) start none, so idle work does not fill the tracing backend;
/// a client tool's calls (`startsTraces`) each start one.
public struct TracingClientInterceptor: ClientInterceptor {
    /// Whether a call made outside any trace starts one.
    public var startsTraces: Bool

    public init(startsTraces: Bool = false) {
        self.startsTraces = startsTraces
    }

    public func intercept<Result: Sendable>(
        context: ClientContext, next: @Sendable (ClientContext) async throws -> Result
    ) async throws -> Result {
        let current = ServiceContext.current.flatMap { $0.hasTraceParent ? $0 : nil }
        guard current != nil || startsTraces else { return try await next(context) }
        return try await withSpan(context.method.fullName, context: current ?? .topLevel, ofKind: .client) { span in
            span.attributes["rpc.system"] = "jframe"
            span.attributes["rpc.service"] = context.method.service
            span.attributes["rpc.method"] = context.method.method
            var context = context
            InstrumentationSystem.instrument.inject(span.context, into: &context.options.metadata, using: MetadataCarrier())
            return try await next(context)
        }
    }
}

extension ServiceContext {
    /// Whether a span is current here (a tracer put its span context in).
    var hasTraceParent: Bool {
        var carrier = Metadata()
        InstrumentationSystem.instrument.inject(self, into: &carrier, using: MetadataCarrier())
        return carrier["traceparent"] != nil
    }
}

/// Call metadata as a carrier of trace context.
struct MetadataCarrier: Extractor, Injector {
    func extract(key: String, from carrier: Metadata) -> String? { carrier[key] }
    func inject(_ value: String, forKey key: String, into carrier: inout Metadata) { carrier[key] = value }
}
