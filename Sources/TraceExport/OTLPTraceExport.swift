public import Logging
import OTel
public import ServiceLifecycle
import Synchronization
import Tracing

/// Traces out of the process: swift-otel installed as the swift-distributed-tracing backend,
/// exporting spans over OTLP/HTTP to a collector (the OpenTelemetry Collector, Jaeger, Tempo, …).
///
/// Off unless an endpoint is given: without a tracer installed, swift-distributed-tracing's
/// no-op tracer answers and the servers add no tracing interceptor at all.
public enum OTLPTraceExport {
    public struct Settings: Sendable {
        /// The collector's base URL, `http://host:4318`; spans go to `<endpoint>/v1/traces`.
        public var endpoint: String
        /// `service.name` on every span.
        public var serviceName: String
        /// The share of new traces recorded, 0 to 1; a call that continues a trace follows its
        /// caller's decision (parent-based sampling, OpenTelemetry's default).
        public var sampleRatio: Double
        /// How long finished spans may wait before they are sent in one batch.
        public var exportDelay: Duration

        public init(endpoint: String, serviceName: String, sampleRatio: Double = 1, exportDelay: Duration = .seconds(1)) {
            self.endpoint = endpoint
            self.serviceName = serviceName
            self.sampleRatio = sampleRatio
            self.exportDelay = exportDelay
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String {
            switch self {
            case .invalid(let reason): return reason
            }
        }
    }

    private static let installed = Mutex(false)

    /// Whether `endpoint` is a URL spans can go to (http:// or https://): the one check behind
    /// every `--otlp-endpoint`.
    public static func isEndpoint(_ endpoint: String) -> Bool {
        endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")
    }

    /// The error for an endpoint `isEndpoint` refuses, as the flag that gave it.
    public static func endpointRefusal(_ endpoint: String) -> String {
        "--otlp-endpoint must be an http:// or https:// URL, got '\(endpoint)'"
    }

    /// Installs the exporting tracer as the process's, once, and returns the service that sends
    /// the spans (run it in the process's service group; on graceful shutdown it sends what is
    /// left). Environment variables `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` still apply on top
    /// (the protocol, for one: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json`).
    public static func bootstrap(_ settings: Settings, logger: Logger) throws -> any Service {
        guard isEndpoint(settings.endpoint) else { throw Failure.invalid(endpointRefusal(settings.endpoint)) }
        guard let sampler = OTel.Configuration.TracesConfiguration.SamplerConfiguration.parentBasedTraceIDRatio(ratio: settings.sampleRatio) else {
            throw Failure.invalid("the trace sample ratio is 0 to 1, got \(settings.sampleRatio)")
        }
        let first = installed.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { throw Failure.invalid("tracing is already installed in this process") }
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.diagnosticLogger = .custom(logger)
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        configuration.traces.sampler = sampler
        configuration.traces.batchSpanProcessor.scheduleDelay = settings.exportDelay
        let base = settings.endpoint.hasSuffix("/") ? String(settings.endpoint.dropLast()) : settings.endpoint
        configuration.traces.otlpExporter.endpoint = base + "/v1/traces"
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }
}
