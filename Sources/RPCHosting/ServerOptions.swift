public import ArgumentParser
import Foundation
public import RPCCore
public import RPCTransportNIO
import RPCTransportTCP
import TraceExport

/// The command-line flags every server binary shares: where to listen and the protocol's limits.
/// Each flag also reads an environment variable (`JFRAME_*`), for containers.
public struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on, host:port (port 0 picks a free one). Env: JFRAME_LISTEN.")
    public var listen: String?

    @Option(
        name: .customLong("http2-listen"),
        help:
            "Also serve every method to gRPC and Connect clients over HTTP/2 (cleartext, prior knowledge) on host:port. Off unless given. Env: JFRAME_HTTP2_LISTEN."
    )
    public var http2Listen: String?

    @Option(
        name: .customLong("auth-tokens-file"),
        help:
            "Require a bearer token on every call but health checks: a file of lines '<read|write|publish> <token> [name]'. Env: JFRAME_AUTH_TOKENS_FILE; tokens can also come inline in JFRAME_AUTH_TOKENS ('<read|write|publish>:<token>[:name],...')."
    )
    public var authTokensFile: String?

    @Option(
        name: .customLong("tls-cert"),
        help: "Serve TLS on every port with this PEM certificate chain (needs --tls-key). Env: JFRAME_TLS_CERT.")
    public var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert. Env: JFRAME_TLS_KEY.")
    public var tlsKey: String?

    @Option(help: "Largest frame payload accepted, bytes. Env: JFRAME_MAX_FRAME_BYTES.")
    public var maxFrameBytes: Int?

    @Option(
        help:
            "Bytes of messages a client may have in flight on one request stream once their size is seen (the window grows past 64 messages for small ones); 0 keeps it at 64 messages. Default 1048576. Env: JFRAME_STREAM_WINDOW_BYTES."
    )
    public var streamWindowBytes: Int?

    @Option(
        name: .customLong("max-json-depth"),
        help:
            "Deepest nesting of objects and arrays accepted in any JSON payload (messages, envelopes, record values), \(JSONNesting.allowedMaximumDepths.lowerBound) to \(JSONNesting.allowedMaximumDepths.upperBound); deeper is INVALID_ARGUMENT. Default \(JSONNesting.defaultMaximumDepth). Env: JFRAME_MAX_JSON_DEPTH."
    )
    public var maxJsonDepth: Int?

    @Option(help: "Connections open at once. Env: JFRAME_MAX_CONNECTIONS.")
    public var maxConnections: Int?

    @Option(help: "Calls open at once per connection. Env: JFRAME_MAX_CONCURRENT_CALLS.")
    public var maxConcurrentCalls: Int?

    @Option(help: "Close connections idle this long, ms. Env: JFRAME_IDLE_TIMEOUT_MS.")
    public var idleTimeoutMs: Int?

    @Option(help: "Close a connection whose frame is not whole within this time, ms. Env: JFRAME_FRAME_READ_TIMEOUT_MS.")
    public var frameReadTimeoutMs: Int?

    @Option(help: "A new connection must send HELLO within this time, ms. Env: JFRAME_HELLO_TIMEOUT_MS.")
    public var helloTimeoutMs: Int?

    @Option(help: "PING a connection silent this long, ms. Env: JFRAME_KEEPALIVE_INTERVAL_MS.")
    public var keepaliveIntervalMs: Int?

    @Option(help: "Close a connection whose PING is not answered within this time, ms. Env: JFRAME_KEEPALIVE_TIMEOUT_MS.")
    public var keepaliveTimeoutMs: Int?

    @Option(help: "On SIGTERM, time for calls in flight to finish, ms. Env: JFRAME_SHUTDOWN_GRACE_MS.")
    public var shutdownGraceMs: Int?

    @Option(
        name: .customLong("idle-poll-us"),
        help:
            "Keep every CPU awake this many microseconds after the last frame in or out (spinner threads with the SCHED_IDLE policy, one per CPU): lower latency for a lone client on a virtual machine, at the price of CPU time while traffic flows. 0, the default, is off. Env: JFRAME_IDLE_POLL_US."
    )
    public var idlePollUs: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical. Env: JFRAME_LOG_LEVEL.")
    public var logLevel: String?

    @Option(
        help:
            "text (for people, the default) or json (one object per line: time, level, service, message, and the request, correlation, command and trace ids where known). Env: JFRAME_LOG_FORMAT."
    )
    public var logFormat: String?

    @Option(
        name: .customLong("metrics-listen"),
        help:
            "Serve Prometheus metrics (GET /metrics, HTTP/1.1) on host:port (port 0 picks a free one). Off unless given. Env: JFRAME_METRICS_LISTEN."
    )
    public var metricsListen: String?

    @Option(
        name: .customLong("otlp-endpoint"),
        help:
            "Export traces over OTLP/HTTP to this collector, http://host:4318 (spans go to /v1/traces; OTEL_EXPORTER_OTLP_* variables apply too). Off unless given. Env: JFRAME_OTLP_ENDPOINT."
    )
    public var otlpEndpoint: String?

    @Option(
        name: .customLong("trace-sample-ratio"),
        help:
            "With --otlp-endpoint: the share of new traces recorded, 0 to 1 (default 1); a call that continues a caller's trace follows the caller's decision. Env: JFRAME_TRACE_SAMPLE_RATIO."
    )
    public var traceSampleRatio: Double?

    public init() {}

    public func validate() throws {
        for (name, value) in [
            ("--max-frame-bytes", maxFrameBytes), ("--max-connections", maxConnections),
            ("--max-concurrent-calls", maxConcurrentCalls), ("--idle-timeout-ms", idleTimeoutMs),
            ("--frame-read-timeout-ms", frameReadTimeoutMs), ("--hello-timeout-ms", helloTimeoutMs),
            ("--keepalive-interval-ms", keepaliveIntervalMs), ("--keepalive-timeout-ms", keepaliveTimeoutMs),
        ] {
            if let value, value < 1 { throw ValidationError("\(name) must be at least 1, got \(value)") }
        }
        if let shutdownGraceMs, shutdownGraceMs < 0 { throw ValidationError("--shutdown-grace-ms must not be negative") }
        if let idlePollUs, !(0...1_000_000).contains(idlePollUs) {
            throw ValidationError("--idle-poll-us must be between 0 (off) and 1000000, got \(idlePollUs)")
        }
        if let maxFrameBytes, maxFrameBytes < 1024 { throw ValidationError("--max-frame-bytes must be at least 1024") }
        if let streamWindowBytes, streamWindowBytes < 0 { throw ValidationError("--stream-window-bytes must not be negative") }
        if let maxJsonDepth { try Self.checkJSONDepth(maxJsonDepth, "--max-json-depth") }
        if let logFormat, LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format is text or json, got '\(logFormat)'") }
        if let metricsListen { _ = try Self.address(metricsListen, "--metrics-listen") }
        if let traceSampleRatio, !(0...1).contains(traceSampleRatio) {
            throw ValidationError("--trace-sample-ratio is 0 to 1, got \(traceSampleRatio)")
        }
        if let otlpEndpoint, !OTLPTraceExport.isEndpoint(otlpEndpoint) {
            throw ValidationError(OTLPTraceExport.endpointRefusal(otlpEndpoint))
        }
    }

    /// The collector traces go to (`--otlp-endpoint`, else `JFRAME_OTLP_ENDPOINT`); nil: tracing off.
    public var otlpEndpointChosen: String? { otlpEndpoint ?? Self.environment("JFRAME_OTLP_ENDPOINT") }

    /// The share of new traces recorded (`--trace-sample-ratio`, else `JFRAME_TRACE_SAMPLE_RATIO`, else 1).
    public func traceSampleRatioChosen() throws -> Double {
        if let traceSampleRatio { return traceSampleRatio }
        guard let text = Self.environment("JFRAME_TRACE_SAMPLE_RATIO") else { return 1 }
        guard let ratio = Double(text), (0...1).contains(ratio) else {
            throw ValidationError("JFRAME_TRACE_SAMPLE_RATIO is 0 to 1, got '\(text)'")
        }
        return ratio
    }

    private static func address(_ text: String, _ name: String) throws -> String {
        do {
            _ = try parseAddress(text)
            return text
        } catch {
            throw ValidationError("\(name) must be host:port, got '\(text)'")
        }
    }

    /// How the log is written: `--log-format`, else `JFRAME_LOG_FORMAT`, else text.
    public func logFormatChosen() throws -> LogFormat {
        guard let text = logFormat ?? Self.environment("JFRAME_LOG_FORMAT") else { return .text }
        guard let format = LogFormat(rawValue: text) else {
            throw ValidationError("the log format is text or json, got '\(text)' (--log-format, JFRAME_LOG_FORMAT)")
        }
        return format
    }

    /// Where the metrics page is served (`--metrics-listen`, else `JFRAME_METRICS_LISTEN`); nil: off.
    public func metricsListenAddress() throws -> String? {
        if let metricsListen { return try Self.address(metricsListen, "--metrics-listen") }
        return try Self.environment("JFRAME_METRICS_LISTEN").map { try Self.address($0, "JFRAME_METRICS_LISTEN") }
    }

    private static func checkJSONDepth(_ depth: Int, _ name: String) throws {
        let allowed = JSONNesting.allowedMaximumDepths
        guard allowed.contains(depth) else {
            throw ValidationError("\(name) must be between \(allowed.lowerBound) and \(allowed.upperBound), got \(depth)")
        }
    }

    /// The bound on JSON nesting (`--max-json-depth`, else `JFRAME_MAX_JSON_DEPTH`, else the default).
    public func jsonNestingBound() throws -> Int {
        guard let depth = try integer(maxJsonDepth, "JFRAME_MAX_JSON_DEPTH") else { return JSONNesting.defaultMaximumDepth }
        try Self.checkJSONDepth(depth, "JFRAME_MAX_JSON_DEPTH")
        return depth
    }

    /// The address to listen on: the flag, else `JFRAME_LISTEN`, else `defaultAddress`.
    public func listenAddress(default defaultAddress: String) -> String {
        listen ?? Self.environment("JFRAME_LISTEN") ?? defaultAddress
    }

    /// The HTTP/2 edge's address: the flag, else `JFRAME_HTTP2_LISTEN`, else none (the edge is off).
    public var http2ListenAddress: String? { http2Listen ?? Self.environment("JFRAME_HTTP2_LISTEN") }

    /// The server configuration these flags and the environment describe.
    public func configuration() throws -> ServerConfiguration {
        var configuration = ServerConfiguration.defaults
        if let value = try integer(maxFrameBytes, "JFRAME_MAX_FRAME_BYTES") { configuration.limits.maxFrameBytes = value }
        if let value = try integer(maxConnections, "JFRAME_MAX_CONNECTIONS") { configuration.maxConnections = value }
        if let value = try integer(streamWindowBytes, "JFRAME_STREAM_WINDOW_BYTES") { configuration.limits.streamWindowBytes = value }
        if let value = try integer(maxConcurrentCalls, "JFRAME_MAX_CONCURRENT_CALLS") {
            configuration.limits.maxConcurrentCalls = value
        }
        if let value = try integer(idleTimeoutMs, "JFRAME_IDLE_TIMEOUT_MS") { configuration.idleTimeout = .milliseconds(value) }
        if let value = try integer(frameReadTimeoutMs, "JFRAME_FRAME_READ_TIMEOUT_MS") {
            configuration.limits.frameReadTimeout = .milliseconds(value)
        }
        if let value = try integer(helloTimeoutMs, "JFRAME_HELLO_TIMEOUT_MS") { configuration.helloTimeout = .milliseconds(value) }
        if let value = try integer(keepaliveIntervalMs, "JFRAME_KEEPALIVE_INTERVAL_MS") {
            configuration.keepaliveInterval = .milliseconds(value)
        }
        if let value = try integer(keepaliveTimeoutMs, "JFRAME_KEEPALIVE_TIMEOUT_MS") {
            configuration.keepaliveTimeout = .milliseconds(value)
        }
        if let value = try integer(shutdownGraceMs, "JFRAME_SHUTDOWN_GRACE_MS") {
            configuration.shutdownGracePeriod = .milliseconds(value)
        }
        return configuration
    }

    /// How long the CPUs are kept awake after the last frame (`--idle-poll-us`, else
    /// `JFRAME_IDLE_POLL_US`); nil when idle polling is off.
    public func idlePollWindow() throws -> Duration? {
        guard let microseconds = try integer(idlePollUs, "JFRAME_IDLE_POLL_US"), microseconds > 0 else { return nil }
        guard microseconds <= 1_000_000 else { throw ValidationError("JFRAME_IDLE_POLL_US must be at most 1000000, got \(microseconds)") }
        return .microseconds(microseconds)
    }

    /// The tokens callers must present: from `--auth-tokens-file` (or `JFRAME_AUTH_TOKENS_FILE`)
    /// and `JFRAME_AUTH_TOKENS`; nil when neither is set (no authentication).
    public func accessTokens() throws -> AccessTokens? {
        let path = authTokensFile ?? Self.environment("JFRAME_AUTH_TOKENS_FILE")
        let inline = Self.environment("JFRAME_AUTH_TOKENS")
        guard path != nil || inline != nil else { return nil }
        var tokens = AccessTokens()
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read the token file \(path)")
            }
            tokens.merge(try AccessTokens(fileText: String(decoding: data, as: UTF8.self), source: path))
        }
        if let inline { tokens.merge(try AccessTokens(list: inline, source: "JFRAME_AUTH_TOKENS")) }
        guard tokens.count > 0 else { throw ValidationError("the token file and JFRAME_AUTH_TOKENS hold no token") }
        return tokens
    }

    /// The certificate and key to serve TLS with, or nil for cleartext.
    public func tlsFiles() throws -> TLSFiles? {
        let cert = tlsCert ?? Self.environment("JFRAME_TLS_CERT")
        let key = tlsKey ?? Self.environment("JFRAME_TLS_KEY")
        switch (cert, key) {
        case (nil, nil): return nil
        case (let cert?, let key?): return TLSFiles(certificateChain: cert, privateKey: key)
        default: throw ValidationError("TLS needs both --tls-cert and --tls-key (JFRAME_TLS_CERT, JFRAME_TLS_KEY)")
        }
    }

    var level: String { logLevel ?? Self.environment("JFRAME_LOG_LEVEL") ?? "info" }

    private func integer(_ flag: Int?, _ variable: String) throws -> Int? {
        if let flag { return flag }
        guard let text = Self.environment(variable) else { return nil }
        guard let value = Int(text), value >= 0 else { throw ValidationError("\(variable)='\(text)' is not a whole number") }
        return value
    }

    static func environment(_ name: String) -> String? { Environment.string(name) }
}

/// Environment variables as settings: unset and empty are the same.
public enum Environment {
    public static func string(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// The variable as a whole number; a value that is not one is an error, not ignored.
    public static func integer(_ name: String) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else { throw ValidationError("\(name)='\(text)' is not a whole number") }
        return value
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
