import Foundation
public import Logging
public import MetricsSupport
import NIOCore
import NIOHTTP1
public import Prometheus
import RPCCore
import RPCTransportNIO
public import ServiceLifecycle

/// Serves `GET /metrics` in the Prometheus text format over HTTP/1.1, on a port of its own (as
/// every Prometheus exporter does), so a scrape never competes with RPC frames for a connection.
///
/// Before each page, every ``MetricsSource`` sets its gauges; then the registry is rendered.
/// Anything but `/metrics` is 404; a method other than GET or HEAD is 405.
public final class MetricsEndpoint: Service, Sendable {
    private let listener: SocketListener
    private let registry: PrometheusCollectorRegistry
    private let sources: [any MetricsSource]
    private let name: String
    private let logger: Logger

    /// - Parameters:
    ///   - address: `host:port`; port 0 picks a free one (``listeningAddress()`` tells which).
    ///   - name: the server's name, in the line that announces the port.
    public init(
        address: String, registry: PrometheusCollectorRegistry, sources: [any MetricsSource], name: String,
        logger: Logger = Logger(label: "metrics")
    ) throws {
        let (host, port) = try parseAddress(address)
        self.listener = SocketListener(host: host, port: port)
        self.registry = registry
        self.sources = sources
        self.name = name
        self.logger = logger
    }

    /// The address bound, once listening.
    public func listeningAddress() async throws -> SocketAddress { try await listener.listeningAddress() }

    /// The page as a scrape sees it now.
    public func render() async -> [UInt8] {
        for source in sources { await source.updateMetrics() }
        return registry.emitToBuffer()
    }

    public func run() async throws {
        let listener = self.listener
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.announce() }
                group.addTask {
                    try await listener.run { channel in
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler { await self.render() })
                    }
                }
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            listener.stop()
        }
    }

    /// Says where the page is: `{"event":"listening-metrics",…}` on stdout, as the RPC ports do.
    private func announce() async throws {
        try await listener.announce(event: "listening-metrics", service: name, logger: logger) { "metrics at http://\($0):\($1)/metrics" }
    }
}

/// One HTTP/1.1 connection to the metrics port: answers each request when its end arrives
/// (NIO's pipelining helper holds later requests until the answer is written).
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () async -> [UInt8]
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () async -> [UInt8]) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // a scrape has no body; one sent is ignored
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard path == "/metrics" else {
            write(.notFound, Array("not found: the metrics are at /metrics\n".utf8), to: request, context: context)
            return
        }
        guard request.method == .GET || request.method == .HEAD else {
            write(
                .methodNotAllowed, Array("only GET and HEAD\n".utf8), to: request, context: context,
                headers: [("allow", "GET, HEAD")])
            return
        }
        let render = self.render
        let page = context.eventLoop.makePromise(of: [UInt8].self)
        page.completeWithTask { await render() }
        page.futureResult.assumeIsolated().whenSuccess { body in
            self.write(.ok, body, to: request, context: context, contentType: PrometheusExposition.contentType)
        }
    }

    private func write(
        _ status: HTTPResponseStatus, _ body: [UInt8], to request: HTTPRequestHead, context: ChannelHandlerContext,
        contentType: String = "text/plain; charset=utf-8", headers extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders([("content-type", contentType), ("content-length", "\(body.count)")] + extra)
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
