import ArgumentParser
import RPCHosting
import RPCStandardServices

/// rpc-testserver: hosts the Echo test service (with reflection and health) for the contract
/// tests and the RPC benchmark.
struct RPCTestServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc-testserver",
        abstract: "Serve jframe.testing.v1.Echo, reflection and health over the jframe protocol.",
        discussion: "Prints one JSON line on stdout once listening: {\"event\":\"listening\",\"host\":…,\"port\":…}.")

    @OptionGroup var server: ServerOptions

    func run() async throws {
        try await ServerHost.run(
            name: "rpc-testserver", services: [EchoService()], options: server, defaultAddress: "127.0.0.1:7070")
    }
}

@main
enum Entry {
    static func main() { ConcurrencyOnEventLoops.run { await RPCTestServer.main() } }
}
