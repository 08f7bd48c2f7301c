/// Checks the `authorization: Bearer <token>` metadata of every call against the server's
/// tokens and the method's declared access (Protocols/ `"access"`, WIRE.md §14).
///
/// - `public` methods (health checks) need no token.
/// - No token, a malformed header or an unknown token: `UNAUTHENTICATED`.
/// - A read-only token on a `write` method: `PERMISSION_DENIED`.
///
/// It throws before the handler runs, so a refused call changes nothing. Put it after the
/// logging and metrics interceptors so refusals are logged and counted like any failure.
public struct BearerTokenServerInterceptor: ServerInterceptor {
    /// The metadata key; HTTP/2 clients send it as the standard `authorization` header.
    public static let metadataKey = "authorization"

    private let tokens: AccessTokens

    public init(tokens: AccessTokens) {
        self.tokens = tokens
    }

    public func intercept(
        context: ServerContext, next: @Sendable (ServerContext) async throws -> Void
    ) async throws {
        let access = context.method.access
        guard access != .public else { return try await next(context) }
        guard let header = context.metadata[Self.metadataKey] else {
            throw RPCError(
                code: .unauthenticated,
                message: "\(context.method.fullName) needs a bearer token: send 'authorization: Bearer <token>'")
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix,
            let grant = tokens.grant(for: header.dropFirst(prefix.count))
        else {
            throw RPCError(code: .unauthenticated, message: "the bearer token is not valid")
        }
        guard grant.scope.allows(access) else {
            throw RPCError(
                code: .permissionDenied,
                message: "\(context.method.fullName) changes state and needs a write token; '\(grant.name)' is read-only")
        }
        var context = context
        context.principal = grant.name
        context.scope = grant.scope
        try await next(context)
    }
}

/// Sends `authorization: Bearer <token>` on every call a client makes (unless the call's options
/// already carry an authorization).
public struct BearerTokenClientInterceptor: ClientInterceptor {
    private let header: String

    public init(token: String) {
        header = "Bearer " + token
    }

    public func intercept<Result: Sendable>(
        context: ClientContext, next: @Sendable (ClientContext) async throws -> Result
    ) async throws -> Result {
        var context = context
        if context.options.metadata[BearerTokenServerInterceptor.metadataKey] == nil {
            context.options.metadata[BearerTokenServerInterceptor.metadataKey] = header
        }
        return try await next(context)
    }
}
