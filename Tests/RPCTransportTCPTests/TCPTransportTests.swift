import Contracts
import Dispatch
import Logging
import NIOCore
import NIOPosix
import RPCCore
import RPCStandardServices
import RPCTransportTCP
import Synchronization
import Testing

/// A real server on 127.0.0.1:0 and a real client, over the kernel's loopback.
@Suite("TCP transport")
struct TCPTransportTests {
    init() { _ = GlobalExecutorUnderTest.installed }

    typealias Echo = JframeTestingV1.Echo
    static let message = JframeTestingV1.EchoMessage(id: "m1", account: "acct-000042", amount: 7, note: "hello")

    /// Runs `body` with a client connected to a fresh server; shuts the server down afterwards.
    static func withServer(
        configuration: ServerConfiguration = .defaults,
        services: [any RPCService] = [],
        onActivity: (@Sendable () -> Void)? = nil,
        _ body: @Sendable (RPCClient, Int, EchoService) async throws -> Void
    ) async throws {
        let transport = TCPServerTransport(host: "127.0.0.1", port: 0, limits: configuration.limits, onActivity: onActivity)
        let echo = EchoService()
        let server = RPCServer(transport: transport, services: services.isEmpty ? [echo] : services, configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await transport.listeningAddress().port!
            let client = RPCClient(transport: TCPClientTransport(host: "127.0.0.1", port: port))
            do {
                try await body(client, port, echo)
            } catch {
                server.beginGracefulShutdown()
                throw error
            }
            client.close()
            server.beginGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// What idle polling is fed by: the server transport's callback, for frames in and out.
    @Test func theActivityCallbackHearsOfFramesInAndOut() async throws {
        let frames = Atomic(0)
        try await Self.withServer(onActivity: { frames.add(1, ordering: .relaxed) }) { client, _, _ in
            let before = frames.load(ordering: .relaxed)
            for _ in 0..<5 { _ = try await Echo.Client(client).get(Self.message) }
            // Each call: at least its request frame in and its reply frame out.
            #expect(frames.load(ordering: .relaxed) - before >= 10)
        }
    }

    @Test func allFourCallKindsWork() async throws {
        try await Self.withServer { client, _, _ in
            let echo = Echo.Client(client)
            #expect(try await echo.get(Self.message) == Self.message)
            let amounts = try await echo.expand(.init(message: Self.message, count: 300)) { stream in
                var amounts: [Int] = []
                for try await message in stream { amounts.append(message.amount) }
                return amounts
            }
            #expect(amounts == Array(0..<300))
            let collected = try await echo.collect { writer in
                for amount in 1...200 { try await writer.write(.init(id: "c", account: "a", amount: amount, note: "")) }
            }
            #expect(collected == .init(count: 200, totalAmount: 20_100))
            let notes = try await echo.update(
                requests: { writer in
                    for index in 0..<100 { try await writer.write(.init(id: "b", account: "a", amount: index, note: "n\(index)")) }
                },
                responses: { stream in
                    var notes: [String] = []
                    for try await message in stream { notes.append(message.note) }
                    return notes
                })
            #expect(notes == (0..<100).map { "N\($0)" })
        }
    }

    @Test func manyConcurrentCallsShareOneConnection() async throws {
        try await Self.withServer { client, _, _ in
            let echo = Echo.Client(client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        var message = Self.message
                        message.amount = index
                        let reply = try await echo.get(message)
                        #expect(reply == message)
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// Runs `attempt` with a growing wait (100, 400, 1600 ms) until the server has counted a
    /// cancelled sleep, and returns whether it did. The handler must be asleep when its call is
    /// stopped; on a loaded machine a call stopped too soon never reaches its handler (correctly:
    /// there is nothing to stop), so a later try gives it longer.
    static func untilTheServerCancelsASleep(_ echo: Echo.Client, _ attempt: (Int) async throws -> Void) async throws -> Bool {
        for wait in [100, 400, 1600] {
            try await attempt(wait)
            // The server counts the cancelled sleep when its handler wakes.
            let deadline = ContinuousClock.now + .seconds(2)
            while ContinuousClock.now < deadline {
                if try await echo.stats(.init()).sleepsCancelled > 0 { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return false
    }

    /// A handler that awaits work finished on another thread (as the event store's writer and the
    /// log's syncer finish appends) resumes on its connection's event loop, so its reply needs no
    /// second thread hop. (Without the preference it would resume on the global executor's
    /// threads, which in tests are not event loops at all.)
    @Test func aHandlerResumedFromAnotherThreadRunsOnItsConnectionsEventLoop() async throws {
        struct LoopProbe: RPCService {
            func register(with router: inout RPCRouter) {
                router.registerUnary(Echo.Method.get) { (message: JframeTestingV1.EchoMessage, _) in
                    let before = MultiThreadedEventLoopGroup.currentEventLoop
                    await withCheckedContinuation { continuation in
                        DispatchQueue.global().async { continuation.resume() }
                    }
                    let after = MultiThreadedEventLoopGroup.currentEventLoop
                    var reply = message
                    reply.note = before == nil ? "not on a loop" : (after === before ? "same loop" : "moved")
                    return reply
                }
            }
        }
        try await Self.withServer(services: [LoopProbe()]) { client, _, _ in
            for _ in 0..<20 {
                let reply = try await Echo.Client(client).get(Self.message)
                #expect(reply.note == "same loop")
            }
        }
    }

    @Test func deadlineIsPropagatedAndCancelsTheHandler() async throws {
        try await Self.withServer { client, _, _ in
            let echo = Echo.Client(client)
            let cancelled = try await Self.untilTheServerCancelsASleep(echo) { timeout in
                let started = ContinuousClock.now
                let error = await #expect(throws: RPCError.self) {
                    _ = try await echo.sleep(.init(milliseconds: 30_000), options: CallOptions(timeout: .milliseconds(timeout)))
                }
                #expect(error?.code == .deadlineExceeded)
                // The deadline, not the handler's 30 s sleep, ended the call. The margin is wide
                // because a CI machine running every suite at once can stall a process for seconds.
                #expect(ContinuousClock.now - started < .milliseconds(timeout) + .seconds(15))
            }
            #expect(cancelled)
            let stats = try await echo.stats(.init())
            #expect(stats.sleepsCancelled == 1 && stats.sleepsCompleted == 0)
        }
    }

    @Test func cancellingTheCallerCancelsTheServerHandler() async throws {
        try await Self.withServer { client, _, _ in
            let echo = Echo.Client(client)
            let cancelled = try await Self.untilTheServerCancelsASleep(echo) { wait in
                let call = Task { try await echo.sleep(.init(milliseconds: 5000)) }
                try await Task.sleep(for: .milliseconds(wait))
                call.cancel()
                let result = await call.result
                #expect(throws: RPCError.self) { try result.get() }
                if case .failure(let error as RPCError) = result { #expect(error.code == .cancelled) }
            }
            #expect(cancelled)
            let stats = try await echo.stats(.init())
            #expect(stats.sleepsCancelled == 1 && stats.sleepsCompleted == 0)
        }
    }

    @Test func statusCodesAndFieldViolationsReachTheClient() async throws {
        try await Self.withServer { client, _, _ in
            let echo = Echo.Client(client)
            for code in StatusCode.allDefined.dropFirst() {
                let error = await #expect(throws: RPCError.self) {
                    _ = try await echo.fail(.init(code: code.rawValue, message: "asked"))
                }
                #expect(error?.code == code)
            }
            let invalid = await #expect(throws: RPCError.self) { _ = try await echo.fail(.init(code: 3)) }
            #expect(invalid?.details.first?.fieldViolations == [FieldViolation(field: "code", description: "asked to fail")])
        }
    }

    @Test func clientReconnectsAfterTheServerRestartsWithBackoff() async throws {
        // A port nobody listens on: calls fail fast with UNAVAILABLE while backing off.
        let probe = TCPServerTransport(host: "127.0.0.1", port: 0)
        let probeTask = Task { try await probe.listen { _ in fatalError("no connection expected") } }
        let port = try await probe.listeningAddress().port!
        probe.stopListening()
        _ = await probeTask.result

        var configuration = ClientConfiguration.defaults
        configuration.initialBackoff = .milliseconds(50)
        let client = RPCClient(
            transport: TCPClientTransport(host: "127.0.0.1", port: port), configuration: configuration)
        let echo = Echo.Client(client)
        let down = await #expect(throws: RPCError.self) { _ = try await echo.get(Self.message) }
        #expect(down?.code == .unavailable)

        // Now start a server on that port; a waitForReady call gets through once the backoff passes.
        let transport = TCPServerTransport(host: "127.0.0.1", port: port)
        let server = RPCServer(transport: transport, services: [EchoService()])
        let serving = Task { try await server.run() }
        _ = try await transport.listeningAddress()
        let reply = try await echo.get(Self.message, options: CallOptions(timeout: .seconds(5), waitForReady: true))
        #expect(reply == Self.message)
        client.close()
        server.beginGracefulShutdown()
        try await serving.value
    }

    @Test func clientSeesUnavailableWhenTheConnectionDropsMidCall() async throws {
        let transport = TCPServerTransport(host: "127.0.0.1", port: 0)
        var configuration = ServerConfiguration.defaults
        configuration.shutdownGracePeriod = .milliseconds(50)
        let server = RPCServer(transport: transport, services: [EchoService()], configuration: configuration)
        let serving = Task { try await server.run() }
        let port = try await transport.listeningAddress().port!
        let echo = Echo.Client(RPCClient(transport: TCPClientTransport(host: "127.0.0.1", port: port)))
        let call = Task { try await echo.sleep(.init(milliseconds: 5000)) }
        try await Task.sleep(for: .milliseconds(100))
        server.beginGracefulShutdown()
        let result = await call.result
        guard case .failure(let error as RPCError) = result else {
            Issue.record("expected an RPCError, got \(result)")
            return
        }
        #expect(error.code == .unavailable, "\(error)")
        try await serving.value
    }
}
