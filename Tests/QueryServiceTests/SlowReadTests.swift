import Contracts
import Foundation
import NIOPosix
import QueryService
import RPCCore
import RPCStandardServices
import RPCTransportTCP
import ReadModels
import Synchronization
import TestSupport
import Testing

/// Blocking the event loops on disk, measured on the read side: queries whose reads stall must
/// not hold up unrelated calls (a health check) served by the same loops.
@Suite(.serialized) struct SlowReadTests {
    @Test func aStalledReadDoesNotStallOtherCallsOnTheSameLoops() async throws {
        let directory = TemporaryDirectory(prefix: "slow-read")
        defer { directory.cleanup() }
        // Stalls long enough that a check caught behind one stands out from a loaded machine's
        // scheduling noise (524 ms seen once in CI beside the storage-fault suites).
        let stall = Duration.seconds(2)
        var options = ReadModelStore.Options()
        options.beforeEachRead = { Thread.sleep(forTimeInterval: TimeInterval(stall.components.seconds)) }
        let store = try ReadModelStore(path: directory.path + "/readmodels.sqlite", options: options)
        defer { store.close() }
        let health = HealthService(services: [QueriesAPI.Accounts.name], initial: .serving)
        // Loops of its own (two, as on the machines we measure on), so that the stall this test
        // provokes cannot reach other suites running beside it on NIO's shared loops.
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { loops.shutdownGracefully { _ in } }
        let transport = TCPServerTransport(host: "127.0.0.1", port: 0, group: loops)
        let server = RPCServer(transport: transport, services: [AccountsService(store: store), health])
        let serving = Task { try await server.run() }
        defer {
            server.beginGracefulShutdown()
            serving.cancel()
        }
        let port = try await transport.listeningAddress().port!
        // Several connections, so that both of NIO's loops serve some of them.
        let clients = (0..<6).map { _ in RPCClient(transport: TCPClientTransport(host: "127.0.0.1", port: port, group: loops)) }
        defer { for client in clients { client.close() } }

        let (querying, slowQueries) = StallProbe.load(from: clients) { client in
            _ = try await QueriesAPI.Accounts.Client(client).getAccount(.init(accountId: "a"))
        }
        defer { querying.cancel() }
        // The first stalled read shows the disk is slow; what is measured is what follows.
        try await waitUntil("stalled queries answered", timeout: .seconds(20)) { slowQueries.count >= 6 }

        let checks = try await StallProbe.measure(from: clients, for: stall + .seconds(1)) { client in
            _ = try await JframeHealthV1.Health.Client(client).check(.init(service: QueriesAPI.Accounts.name))
        }
        #expect(slowQueries.count > 6, "queries kept stalling meanwhile")
        #expect(checks.count > 20, "health checks went on")
        #expect(checks.longest < stall / 2, "a health check took \(checks.longest) beside reads that stall \(stall)")
    }
}
