/// Code that runs around every call a server serves: logging, metrics, authentication.
///
/// An interceptor calls `next` to go on (perhaps with a changed context), or throws an
/// `RPCError` to end the call without running the handler (as an auth check does). Errors from
/// `next` pass through it, so it can observe or replace the status the call ends with.
/// Interceptors run in the order they were given to the server, the first outermost.
public protocol ServerInterceptor: Sendable {
    func intercept(
        context: ServerContext,
        next: @Sendable (ServerContext) async throws -> Void
    ) async throws
}
