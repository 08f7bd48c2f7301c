public import ArgumentParser
public import RPCCore
import RPCTransportNIO
import RPCTransportTCP
import TraceExport

/// How a client reaches a server that may require TLS and a bearer token.
public struct ClientSecurity: Sendable {
    /// Sent as `authorization: Bearer <token>` on every call.
    public var token: String?
    /// Nil: cleartext.
    public var trust: TLSTrust?

    public init(token: String? = nil, trust: TLSTrust? = nil) {
        self.token = token
        self.trust = trust
    }

    /// A client of `address` (`host:port`) with this TLS and token.
    public func client(address: String) throws -> RPCClient {
        let transport = try TCPClientTransport(address: address, tls: try trust?.makeClientContext())
        var interceptors: [any ClientInterceptor] = token.map { [BearerTokenClientInterceptor(token: $0)] } ?? []
        // With tracing on (--otlp-endpoint), calls made inside a trace carry it on; a client
        // tool's calls (ClientTracing) start one each.
        if ServerHost.tracingService != nil {
            interceptors.insert(TracingClientInterceptor(), at: 0)
        } else if ClientTracing.isOn {
            interceptors.insert(TracingClientInterceptor(startsTraces: true), at: 0)
        }
        return RPCClient(transport: transport, interceptors: interceptors)
    }

    static func resolve(token: String?, tokenVariable: String, ca: String?, caVariable: String, tls: Bool) -> ClientSecurity {
        let caFile = ca ?? Environment.string(caVariable)
        let trust: TLSTrust? = caFile.map { .certificateAuthority(file: $0) } ?? (tls ? .system : nil)
        return ClientSecurity(token: token ?? Environment.string(tokenVariable), trust: trust)
    }
}

/// The CLI's `--token`, `--tls-ca` and `--tls`.
public struct ClientSecurityOptions: ParsableArguments, Sendable {
    @Option(help: "Bearer token sent with every call (servers started with --auth-tokens-file need one). Env: CQRS_TOKEN.")
    public var token: String?

    @Option(
        name: .customLong("tls-ca"),
        help: "Speak TLS and trust servers whose certificate this CA (PEM) issued. Env: CQRS_TLS_CA.")
    public var tlsCA: String?

    @Flag(help: "Speak TLS, trusting the system's root certificates (implied by --tls-ca).")
    public var tls = false

    @Option(
        name: .customLong("otlp-endpoint"),
        help:
            "Trace each call: send its CLIENT span to this OTLP/HTTP collector (http://host:4318); the servers continue the trace. Env: CQRS_OTLP_ENDPOINT."
    )
    public var otlpEndpoint: String?

    public init() {}

    public var security: ClientSecurity {
        ClientSecurity.resolve(token: token, tokenVariable: "CQRS_TOKEN", ca: tlsCA, caVariable: "CQRS_TLS_CA", tls: tls)
    }

    /// A client of `address`; with `--otlp-endpoint`, tracing is started first (the tool calls
    /// `ClientTracing.finish` before it exits).
    public func client(address: String) throws -> RPCClient {
        if let endpoint = otlpEndpoint ?? Environment.string("CQRS_OTLP_ENDPOINT") {
            guard OTLPTraceExport.isEndpoint(endpoint) else { throw ValidationError(OTLPTraceExport.endpointRefusal(endpoint)) }
            try ClientTracing.start(endpoint: endpoint, serviceName: "cqrs")
        }
        return try security.client(address: address)
    }
}

/// A service's `--upstream-token` and `--upstream-tls-ca`: how it calls the services it depends
/// on (the broker; the CommandService's event store).
public struct UpstreamSecurityOptions: ParsableArguments, Sendable {
    @Option(
        name: .customLong("upstream-token"),
        help: "Bearer token for the calls this service makes to the services it depends on. Env: CQRS_UPSTREAM_TOKEN.")
    public var token: String?

    @Option(
        name: .customLong("upstream-tls-ca"),
        help: "Call the services this one depends on over TLS, trusting this CA (PEM). Env: CQRS_UPSTREAM_TLS_CA.")
    public var tlsCA: String?

    public init() {}

    public var security: ClientSecurity {
        ClientSecurity.resolve(
            token: token, tokenVariable: "CQRS_UPSTREAM_TOKEN", ca: tlsCA, caVariable: "CQRS_UPSTREAM_TLS_CA", tls: false)
    }

    public func client(address: String) throws -> RPCClient { try security.client(address: address) }
}
