import IdlePolling
import Logging
import MetricsExposition
public import MetricsSupport
public import RPCCore
import RPCStandardServices
import RPCTransportHTTP2
import RPCTransportTCP
import ServiceLifecycle
import Synchronization
import TraceExport
import WallTime

/// Runs services as a server process: TCP listener, reflection and health added, logging and
/// metrics interceptors, and a ServiceGroup that turns SIGTERM or SIGINT into a graceful shutdown.
public enum ServerHost {
    /// Serves `services` until SIGTERM/SIGINT; prints one JSON line on stdout once listening
    /// (`{"event":"listening","service":…,"host":…,"port":…}`) so scripts and tests can find a port-0 server.
    /// - Parameter metricsSources: what sets gauges before each scrape of `--metrics-listen`,
    ///   besides the services that are sources themselves and the ports' connection counts.
    public static func run(
        name: String, services: [any RPCService], options: ServerOptions, defaultAddress: String,
        extraServices: [any Service] = [], metricsSources: [any MetricsSource] = []
    ) async throws {
        try bootstrapObservability(options, service: name)
        let logger = Logger(label: name)
        let configuration = try options.configuration()
        JSONNesting.maximumDepth = try options.jsonNestingBound()
        if WallTime.skewMilliseconds != 0 {
            logger.warning(
                "the wall clock is skewed (JFRAME_CLOCK_SKEW_MS): for fault-injection tests only",
                metadata: ["clock.skew_ms": "\(WallTime.skewMilliseconds)"])
        }
        raiseOpenFileLimitToHard(toHold: configuration.maxConnections, logger: logger)
        let address = options.listenAddress(default: defaultAddress)
        let tlsFiles = try options.tlsFiles()
        let poller = try options.idlePollWindow().map { IdlePoller.start(window: $0) }
        var onActivity: (@Sendable () -> Void)?
        if let poller { onActivity = { poller.recordActivity() } }
        let transport = try TCPServerTransport(
            address: address, limits: configuration.limits, tls: try tlsFiles?.makeServerContext(), onActivity: onActivity)
        // Tracing first, so the call's span encloses what the others do (and their logs).
        let tracing: [any ServerInterceptor] = tracingService != nil ? [TracingServerInterceptor()] : []
        var interceptors: [any ServerInterceptor] = tracing + [LoggingServerInterceptor()]
        var edgeInterceptors: [any ServerInterceptor] = tracing + [LoggingServerInterceptor()]
        let metricsAddress = try options.metricsListenAddress()
        if metricsAddress != nil {
            interceptors.append(MetricsServerInterceptor(transport: "jframe"))
            edgeInterceptors.append(MetricsServerInterceptor(transport: "http2"))
        }
        if let tokens = try options.accessTokens() {
            interceptors.append(BearerTokenServerInterceptor(tokens: tokens))
            edgeInterceptors.append(BearerTokenServerInterceptor(tokens: tokens))
            logger.info("calls need a bearer token (health checks excepted)", metadata: ["auth.tokens": "\(tokens.count)"])
            if tlsFiles == nil {
                logger.warning("bearer tokens are required but TLS is off: tokens cross the network in cleartext (--tls-cert, --tls-key)")
            }
        }

        var router = RPCRouter()
        for service in services { router.register(service) }
        let hosted = router.methods.map(\.service)
        // Every service the server answers for, health and reflection included: a health check
        // names any of them (WIRE.md: NOT_FOUND only for a service the server does not host).
        let health = HealthService(
            services: Array(Set(hosted)).sorted() + [HealthService.V1.Health.name, ReflectionService.V1.Reflection.name])
        router.register(health)
        router.register(ReflectionService(hosting: router.methods))

        let server = RPCServer(
            transport: transport, router: router,
            interceptors: interceptors, configuration: configuration, logger: logger)
        let announcer = ListeningAnnouncer(
            name: name, transport: transport, health: health, reporters: services.compactMap { $0 as? any ServingStatusReporting },
            tls: tlsFiles != nil, logger: logger)
        var edgeServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var connectionCounts = [ConnectionCountSource(transport: "jframe", server: server)]
        if let edgeAddress = options.http2ListenAddress {
            // The HTTP/2 edge: the same router, interceptors and limits, so the same handlers answer.
            let edgeTransport = try HTTP2ServerTransport(
                address: edgeAddress, limits: configuration.limits,
                tls: try tlsFiles?.makeServerContext(applicationProtocols: ["h2"]))
            let edge = RPCServer(
                transport: edgeTransport, router: router, interceptors: edgeInterceptors,
                configuration: configuration, logger: logger)
            connectionCounts.append(ConnectionCountSource(transport: "http2", server: edge))
            edgeServices = [
                .init(service: edge, successTerminationBehavior: .gracefullyShutdownGroup),
                .init(
                    service: EdgeAnnouncer(name: name, transport: edgeTransport, tls: tlsFiles != nil, logger: logger),
                    successTerminationBehavior: .ignore),
            ]
        }
        var metricsServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metricsAddress {
            let endpoint = try MetricsEndpoint(
                address: metricsAddress, registry: PrometheusExposition.bootstrap(),
                sources: connectionCounts + services.compactMap { $0 as? any MetricsSource } + metricsSources,
                name: name, logger: Logger(label: "metrics"))
            metricsServices = [.init(service: endpoint)]
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)]
                    + [.init(service: announcer, successTerminationBehavior: .ignore)]
                    + edgeServices + metricsServices
                    + (tracingService.map { [.init(service: $0)] } ?? [])
                    + extraServices.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        if let poller {
            logger.info(
                "idle polling: CPUs kept awake after each frame",
                metadata: ["idle_poll.window_us": "\(poller.windowMicroseconds)", "idle_poll.cpus": "\(poller.cpus)"])
        }
        defer {
            if let poller {
                let statistics = poller.statistics
                poller.stop()
                logger.info(
                    "idle polling stopped",
                    metadata: [
                        "idle_poll.spin_ms": "\(statistics.spinNanoseconds / 1_000_000)", "idle_poll.parks": "\(statistics.parks)",
                        "idle_poll.wakes": "\(statistics.wakes)",
                    ])
            }
        }
        try await group.run()
    }
}

extension ServerHost {
    private static let observabilityBootstrapped = Mutex(false)

    /// Sends logs to stderr at the level and in the format the options give; with
    /// `--metrics-listen`, installs the Prometheus registry as the metrics backend; with
    /// `--otlp-endpoint`, installs the exporting tracer (its service runs in `run`'s group). Once
    /// per process; binaries that need a logger before `run` (to open their storage) call it
    /// first, so what they record from the start lands in the registry too.
    public static func bootstrapObservability(_ options: ServerOptions, service: String) throws {
        let format = try options.logFormatChosen()
        let metrics = try options.metricsListenAddress() != nil
        let first = observabilityBootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let level = Logger.Level(rawValue: options.level) ?? .info
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(service: service, label: label)
                handler.logLevel = level
                return handler
            }
        }
        if metrics { _ = PrometheusExposition.bootstrap() }
        if let endpoint = options.otlpEndpointChosen {
            let settings = OTLPTraceExport.Settings(
                endpoint: endpoint, serviceName: service, sampleRatio: try options.traceSampleRatioChosen())
            let exporter = try OTLPTraceExport.bootstrap(settings, logger: Logger(label: "otel"))
            tracingExporter.withLock { $0 = exporter }
        }
    }

    private static let tracingExporter = Mutex<(any Service)?>(nil)

    /// The service that exports spans, once tracing is on (`--otlp-endpoint`); nil when off.
    static var tracingService: (any Service)? { tracingExporter.withLock { $0 } }
}

/// The number of open connections on one port, as `rpc_server_connections{transport}`.
struct ConnectionCountSource: MetricsSource {
    let transport: String
    let server: RPCServer
    private static let gauges = MetricFamily.gauges("rpc_server_connections", labels: ["transport"])

    func updateMetrics() async {
        Self.gauges(transport).record(server.connectionCount)
    }
}

extension ServerHost {
    /// Raises the soft limit on open files to the hard one; `run` does it too. For binaries that
    /// size something by the limit before `run` (the broker's descriptor budget). Returns the limit.
    @discardableResult
    public static func raiseOpenFileLimit(_ options: ServerOptions, logger: Logger) throws -> Int {
        try raiseOpenFileLimitToHard(toHold: options.configuration().maxConnections, logger: logger)
    }
}

/// Raises the soft limit on open files to the hard one (as Go's runtime does): Debian's default
/// soft limit of 1024 would refuse connections below `--max-connections` with EMFILE instead of
/// the protocol's clean GOAWAY. Says so when even the hard limit is too low.
@discardableResult
private func raiseOpenFileLimitToHard(toHold connections: Int, logger: Logger) -> Int {
    var limit = rlimit()
    guard getrlimit(rlimitNoFile, &limit) == 0 else { return 1024 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(rlimitNoFile, &raised) == 0 { limit = raised }
    }
    // Two listeners, the data files and some slack besides the connections themselves.
    let needed = rlim_t(connections) * 2 + 64
    if limit.rlim_cur < needed {
        logger.warning(
            "the open-file limit (\(limit.rlim_cur)) is below what --max-connections needs (\(needed)): raise it (ulimit -n)")
    }
    return Int(clamping: limit.rlim_cur)
}

#if canImport(Glibc)
private let rlimitNoFile = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#else
private let rlimitNoFile = RLIMIT_NOFILE
#endif

/// Waits for the bind, marks the server SERVING and says where it listens; while it serves, asks
/// the services that report their own status about once a second (`ServingStatusReporting`);
/// marks everything NOT_SERVING when graceful shutdown begins.
private struct ListeningAnnouncer: Service {
    let name: String
    let transport: TCPServerTransport
    let health: HealthService
    let reporters: [any ServingStatusReporting]
    let tls: Bool
    let logger: Logger
    static let reportInterval = Duration.seconds(1)

    func run() async throws {
        let address = try await transport.listeningAddress()
        health.setAll(.serving)
        await applyReports()
        let host = address.ipAddress ?? "?"
        let port = address.port ?? 0
        let executor = ConcurrencyOnEventLoops.installed.rawValue
        let malloc = MallocInUse.current.rawValue
        logger.info("listening", metadata: ["address": "\(host):\(port)", "global_executor": "\(executor)", "malloc": "\(malloc)"])
        print(
            #"{"event":"listening","service":"\#(name)","host":"\#(host)","port":\#(port),"tls":\#(tls),"globalExecutor":"\#(executor)","malloc":"\#(malloc)"}"#
        )
        fflush(nil)
        if reporters.isEmpty {
            try? await gracefulShutdown()
        } else {
            try? await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: Self.reportInterval)
                    await applyReports()
                }
            }
        }
        health.setAll(.notServing)
    }

    /// Each reported service's status, and the server's: serving only while every one is.
    private func applyReports() async {
        guard !reporters.isEmpty else { return }
        var all = true
        for reporter in reporters {
            for (service, serving) in await reporter.servingStatus() {
                guard !Task.isCancelled else { return }  // shutting down: NOT_SERVING is set next
                health.setStatus(serving ? .serving : .notServing, for: service)
                all = all && serving
            }
        }
        guard !Task.isCancelled else { return }
        health.setStatus(all ? .serving : .notServing, for: "")
    }
}

/// Says where the HTTP/2 edge listens: `{"event":"listening-http2",…}` on stdout.
private struct EdgeAnnouncer: Service {
    let name: String
    let transport: HTTP2ServerTransport
    let tls: Bool
    let logger: Logger

    func run() async throws {
        let address = try await transport.listeningAddress()
        let host = address.ipAddress ?? "?"
        let port = address.port ?? 0
        logger.info("HTTP/2 edge listening (gRPC, Connect)", metadata: ["address": "\(host):\(port)"])
        print(#"{"event":"listening-http2","service":"\#(name)","host":"\#(host)","port":\#(port),"tls":\#(tls)}"#)
        fflush(nil)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
