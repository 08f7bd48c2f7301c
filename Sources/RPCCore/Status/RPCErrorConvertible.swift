/// An error that knows its status: a service's own error types conform (as grpc-swift 2's
/// `RPCErrorConvertible`), so a handler just throws them and the server turns them into the
/// call's status in one place (`ServerConnection.status(for:)`), with no wrapper at each call.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}
