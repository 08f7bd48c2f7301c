/// Maps `package.Service/Method` to the handler that serves it.
///
/// Typed handlers are adapted here to the one raw shape the connection runs: read request bytes,
/// write response bytes. The adapters check the number of messages each call kind allows, and
/// answer a wrong count with `UNIMPLEMENTED`, as gRPC does.
public struct RPCRouter: Sendable {
    /// Serves one call: reads `call.requests`, writes through `call`, throws to fail with a status.
    public typealias Handler = @Sendable (ServerCall, ServerContext) async throws -> Void

    public struct Route: Sendable {
        public let method: MethodDescriptor
        let handler: Handler
    }

    private var routes: [String: Route] = [:]

    public init() {}

    /// The methods registered, sorted by full name.
    public var methods: [MethodDescriptor] { routes.values.map(\.method).sorted { $0.fullName < $1.fullName } }

    /// The route for a full method name.
    public func route(for fullName: String) -> Route? { routes[fullName] }

    /// Registers a raw handler. A second registration of the same method replaces the first.
    public mutating func register(_ method: MethodDescriptor, handler: @escaping Handler) {
        routes[method.fullName] = Route(method: method, handler: handler)
    }

    /// Registers everything `service` serves.
    public mutating func register(_ service: some RPCService) {
        service.register(with: &self)
    }

    /// A method's request reader (its schema checked) and response writer, chosen when it is
    /// registered rather than per message (`MessageCoding.encoder(for:)`).
    private static func coders<Request: Decodable & Sendable, Response: Encodable & Sendable>(
        _: Request.Type, _: Response.Type
    ) -> (MessageCoding.Decoder<Request>, MessageCoding.Encoder<Response>) {
        (MessageCoding.decoder(for: Request.self, checkingSchema: true), MessageCoding.encoder(for: Response.self))
    }

    public mutating func registerUnary<Request: Decodable & Sendable, Response: Encodable & Sendable>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        let (decode, encode) = Self.coders(Request.self, Response.self)
        register(method) { call, context in
            let request = try await call.singleRequest(decode)
            call.respond(try encode(try await body(request, context)))
        }
    }

    public mutating func registerServerStreaming<Request: Decodable & Sendable, Response: Encodable & Sendable>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (Request, MessageWriter<Response>, ServerContext) async throws -> Void
    ) {
        let (decode, encode) = Self.coders(Request.self, Response.self)
        register(method) { call, context in
            let request = try await call.singleRequest(decode)
            try await body(request, MessageWriter(call.send, encode: encode), context)
        }
    }

    public mutating func registerClientStreaming<Request: Decodable & Sendable, Response: Encodable & Sendable>(
        _ method: MethodDescriptor,
        _ body: @escaping @Sendable (MessageStream<Request>, ServerContext) async throws -> Response
    ) {
        let (decode, encode) = Self.coders(Request.self, Response.self)
        register(method) { call, context in
            let response = try await body(MessageStream(call.requests, decode: decode), context)
            call.respond(try encode(response))
        }
    }

    public mutating func registerBidiStreaming<Request: Decodable & Sendable, Response: Encodable & Sendable>(
        _ method: MethodDescriptor,
        _ body:
            @escaping @Sendable (MessageStream<Request>, MessageWriter<Response>, ServerContext) async throws ->
            Void
    ) {
        let (decode, encode) = Self.coders(Request.self, Response.self)
        register(method) { call, context in
            try await body(MessageStream(call.requests, decode: decode), MessageWriter(call.send, encode: encode), context)
        }
    }
}

/// A set of methods a server hosts; generated code makes every service implementation one.
public protocol RPCService: Sendable {
    func register(with router: inout RPCRouter)
}
