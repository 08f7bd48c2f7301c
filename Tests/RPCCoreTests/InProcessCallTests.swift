import Contracts
import Logging
import MetricsTestKit
import RPCCore
import RPCInProcessTransport
import RPCStandardServices
import Synchronization
import TestSupport
import Testing
import WallTime

/// The real server and client connection logic, joined in memory.
@Suite("Calls over the in-process transport")
struct InProcessCallTests {
    typealias Echo = JframeTestingV1.Echo
    static let message = JframeTestingV1.EchoMessage(id: "m1", account: "acct-000042", amount: 7, note: "hello")

    static func withServer(
        services: [any RPCService] = [EchoService()],
        interceptors: [any ServerInterceptor] = [],
        clientInterceptors: [any ClientInterceptor] = [],
        logger: Logger = Logger(label: "test"),
        _ body: @Sendable (RPCClient) async throws -> Void
    ) async throws {
        let transport = InProcessTransport()
        let server = RPCServer(transport: transport.server, services: services, interceptors: interceptors, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let client = RPCClient(transport: transport.client, interceptors: clientInterceptors)
            // The listener registers asynchronously; wait for it.
            var connected = false
            for _ in 0..<100 where !connected {
                do {
                    _ = try await Echo.Client(client).stats(.init())
                    connected = true
                } catch let error as RPCError where error.code == .unavailable {
                    try await Task.sleep(for: .milliseconds(5))
                } catch is RPCError {
                    connected = true  // an answer, even a refusal, means the server is up
                }
            }
            try await body(client)
            server.beginGracefulShutdown()
            try await group.waitForAll()
        }
    }

    @Test func unaryAndStreamingCallsWorkInMemory() async throws {
        try await Self.withServer { client in
            let echo = Echo.Client(client)
            #expect(try await echo.get(Self.message) == Self.message)
            let count = try await echo.expand(.init(message: Self.message, count: 1000)) { stream in
                var count = 0
                for try await _ in stream { count += 1 }
                return count
            }
            #expect(count == 1000)
        }
    }

    @Test func unknownMethodIsUnimplemented() async throws {
        try await Self.withServer { client in
            let method = MethodDescriptor(service: "jframe.testing.v1.Echo", method: "Nope", kind: .unary)
            let error = await #expect(throws: RPCError.self) {
                _ = try await client.unary(Self.message, method: method, responseType: JSONValue.self)
            }
            #expect(error?.code == .unimplemented)
        }
    }

    @Test func aGenericClientCallsAnyMethodWithRawJSON() async throws {
        try await Self.withServer { client in
            let reply = try await client.unary(
                JSONValue.object(["milliseconds": .integer(1)]), method: Echo.Method.sleep, responseType: JSONValue.self)
            #expect(reply == .object(["sleptMs": .integer(1)]))
        }
    }

    @Test func serverInterceptorsRunInOrderAndCanRefuseACall() async throws {
        let seen = Mutex<[String]>([])
        struct Recording: ServerInterceptor {
            let name: String
            let seen: @Sendable (String) -> Void
            func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
                seen("\(name)>\(context.method.method)")
                try await next(context)
                seen("\(name)<")
            }
        }
        struct Auth: ServerInterceptor {
            func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
                guard context.metadata["authorization"] == "Bearer good" || context.method.method == "Get" else {
                    throw RPCError(code: .unauthenticated, message: "no valid token")
                }
                try await next(context)
            }
        }
        let record: @Sendable (String) -> Void = { entry in seen.withLock { $0.append(entry) } }
        try await Self.withServer(
            interceptors: [Recording(name: "outer", seen: record), Recording(name: "inner", seen: record), Auth()]
        ) { client in
            let echo = Echo.Client(client)
            seen.withLock { $0.removeAll() }
            _ = try await echo.get(Self.message)
            #expect(seen.withLock { $0 } == ["outer>Get", "inner>Get", "inner<", "outer<"])
            let refused = await #expect(throws: RPCError.self) { _ = try await echo.stats(.init()) }
            #expect(refused?.code == .unauthenticated)
            let allowed = try await echo.stats(.init(), options: CallOptions(metadata: ["Authorization": "Bearer good"]))
            #expect(allowed.sleepsCompleted == 0)
        }
    }

    @Test func clientInterceptorsCanAddMetadata() async throws {
        struct AddToken: ClientInterceptor {
            func intercept<Result: Sendable>(
                context: ClientContext, next: @Sendable (ClientContext) async throws -> Result
            ) async throws -> Result {
                var context = context
                context.options.metadata["authorization"] = "Bearer good"
                return try await next(context)
            }
        }
        struct RequireToken: ServerInterceptor {
            func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
                guard context.metadata["authorization"] == "Bearer good" else {
                    throw RPCError(code: .unauthenticated, message: "no valid token")
                }
                try await next(context)
            }
        }
        try await Self.withServer(interceptors: [RequireToken()], clientInterceptors: [AddToken()]) { client in
            let reply = try await Echo.Client(client).get(Self.message)
            #expect(reply == Self.message)
        }
    }

    @Test func metricsCountCallsByMethodAndCode() async throws {
        let metrics = TestMetrics()
        try await Self.withServer(interceptors: [MetricsServerInterceptor(factory: metrics)]) { client in
            let echo = Echo.Client(client)
            for _ in 0..<3 { _ = try await echo.get(Self.message) }
            _ = try? await echo.fail(.init(code: 5))
            let echoService = "jframe.testing.v1.Echo"
            let ok = try metrics.expectCounter(
                "rpc_server_calls_total", [("transport", "jframe"), ("service", echoService), ("method", "Get"), ("code", "OK")])
            #expect(ok.totalValue == 3)
            let notFound = try metrics.expectCounter(
                "rpc_server_calls_total", [("transport", "jframe"), ("service", echoService), ("method", "Fail"), ("code", "NOT_FOUND")])
            #expect(notFound.totalValue == 1)
            let timer = try metrics.expectTimer(
                "rpc_server_call_duration_seconds", [("transport", "jframe"), ("service", echoService), ("method", "Get")])
            #expect(timer.values.count == 3)
        }
    }

    @Test func requestIDFromMetadataIsInTheHandlersLogs() async throws {
        let records = LogRecords()
        var logger = Logger(label: "test") { _ in RecordingLogHandler(records: records) }
        logger.logLevel = .debug
        try await Self.withServer(interceptors: [LoggingServerInterceptor()], logger: logger) { client in
            _ = try await Echo.Client(client).get(Self.message, options: CallOptions(metadata: ["x-request-id": "req-42"]))
            _ = try? await Echo.Client(client).fail(.init(code: 13))
        }
        let lines = records.all
        let ok = lines.first { $0.metadata["rpc.request_id"] == "req-42" }
        #expect(ok?.message == "call ok")
        #expect(ok?.metadata["rpc.method"] == "jframe.testing.v1.Echo/Get")
        let failed = lines.first { $0.message == "call failed" }
        #expect(failed?.level == .error)
        #expect(failed?.metadata["rpc.status"] == "INTERNAL")
    }

    @Test func handlerErrorsThatAreNotRPCErrorsBecomeUnknownWithoutLeakingText() async throws {
        struct Secret: Error {}
        struct Leaky: RPCService {
            func register(with router: inout RPCRouter) {
                router.registerUnary(Echo.Method.get) { (_: JframeTestingV1.EchoMessage, _) -> JframeTestingV1.EchoMessage in
                    throw Secret()
                }
            }
        }
        try await Self.withServer(services: [EchoService(), Leaky()]) { client in
            let error = await #expect(throws: RPCError.self) { _ = try await Echo.Client(client).get(Self.message) }
            #expect(error?.code == .unknown)
            #expect(error?.message.contains("Secret") == false)
        }
    }

    @Test func aHandlerInheritsTheCallersDeadlineForItsOwnCalls() async throws {
        let seen = Mutex<ContinuousClock.Instant?>(nil)
        struct DeadlineProbe: ServerInterceptor {
            let record: @Sendable (ContinuousClock.Instant?) -> Void
            func intercept(context: ServerContext, next: @Sendable (ServerContext) async throws -> Void) async throws {
                record(CallDeadline.current)
                try await next(context)
            }
        }
        try await Self.withServer(interceptors: [DeadlineProbe { deadline in seen.withLock { $0 = deadline } }]) { client in
            let before = ContinuousClock.now
            _ = try await Echo.Client(client).get(Self.message, options: CallOptions(timeout: .seconds(2)))
            let deadline = try #require(seen.withLock { $0 })
            #expect(deadline > before + .seconds(1))
            #expect(deadline < before + .seconds(3))
        }
    }
}
