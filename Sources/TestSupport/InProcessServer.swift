public import RPCCore
import RPCInProcessTransport

/// Hosts services the way a server binary does (an ``RPCServer``: router, interceptors, limits,
/// the real connection logic of both ends) over the in-process transport: a service's suite
/// calls it through its generated client in microseconds, with no socket and no process.
public enum InProcessServer {
    /// Serves `services`, hands `body` a client made by `makeClient` (a generated client's
    /// `init`, for example `BrokerAPI.Broker.Client.init`), then shuts the server down.
    public static func with<Client, Result: Sendable>(
        _ services: [any RPCService], interceptors: [any ServerInterceptor] = [], configuration: ServerConfiguration = .defaults,
        client makeClient: (RPCClient) -> Client, _ body: (Client) async throws -> Result
    ) async throws -> Result {
        let transport = InProcessTransport()
        let server = RPCServer(transport: transport.server, services: services, interceptors: interceptors, configuration: configuration)
        let serving = Task { try await server.run() }
        await transport.listening()
        let client = RPCClient(transport: transport.client)
        defer {
            client.close()
            server.beginGracefulShutdown()
            serving.cancel()
        }
        return try await body(makeClient(client))
    }
}
