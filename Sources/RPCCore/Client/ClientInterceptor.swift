/// What a client interceptor sees of a call: the method, and options it may change
/// (for example adding an auth token or a request id to the metadata).
public struct ClientContext: Sendable {
    public var method: MethodDescriptor
    public var options: CallOptions

    public init(method: MethodDescriptor, options: CallOptions) {
        self.method = method
        self.options = options
    }
}

/// Code that runs around every call a client makes. It calls `next` to go on, perhaps with a
/// changed context, or throws to fail the call before it is sent.
public protocol ClientInterceptor: Sendable {
    func intercept<Result: Sendable>(
        context: ClientContext,
        next: @Sendable (ClientContext) async throws -> Result
    ) async throws -> Result
}
