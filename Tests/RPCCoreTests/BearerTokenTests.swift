import Contracts
import RPCCore
import RPCStandardServices
import Testing

/// Token files and the bearer-token interceptor, over the in-process transport. The contract
/// tests (test_security.py) check every method of the real services the same way over TLS.
@Suite struct BearerTokenTests {
    static let write = "write-0123456789abcdef"
    static let read = "read-0123456789abcdef"

    static let tokens: AccessTokens = {
        var tokens = try! AccessTokens(fileText: "# scope token name\nwrite \(write) operator\n\n  read\t\(read)  \n", source: "tokens")
        tokens.merge(try! AccessTokens(list: "read:another-read-token-0123:ci", source: "JFRAME_AUTH_TOKENS"))
        return tokens
    }()

    @Test func tokenFilesAndListsParseWithScopesAndNames() throws {
        #expect(Self.tokens.count == 3)
        #expect(Self.tokens.grant(for: Self.write)?.scope == .write)
        #expect(Self.tokens.grant(for: Self.write)?.name == "operator")
        #expect(Self.tokens.grant(for: Self.read)?.scope == .read)
        #expect(Self.tokens.grant(for: Self.read)?.name == "tokens:4")
        #expect(Self.tokens.grant(for: "another-read-token-0123")?.name == "ci")
        // Prefixes, extensions and near misses of a token are not it.
        for guess in [String(Self.write.dropLast()), Self.write + "0", "", "Write-0123456789abcdef"] {
            #expect(Self.tokens.grant(for: guess) == nil, "\(guess)")
        }
    }

    @Test(arguments: [
        ("admin \(write)", "scope must be read, write or publish"),
        ("write short", "at least 16 characters"),
        ("write", "expected '<read|write|publish> <token> [name]'"),
        ("read a-token-that-is-long-enough name extra", "expected"),
    ])
    func badTokenLinesAreRefusedWithTheirLine(line: String, message: String) {
        #expect {
            _ = try AccessTokens(fileText: "# ok\n\(line)\n", source: "tokens.txt")
        } throws: { error in
            "\(error)".contains("tokens.txt line 2") && "\(error)".contains(message)
        }
    }

    @Test func scopesAllowWhatTheMethodsAccessNeeds() throws {
        #expect(AccessTokens.Scope.read.allows(.public) && AccessTokens.Scope.read.allows(.read))
        #expect(!AccessTokens.Scope.read.allows(.write))
        #expect(AccessTokens.Scope.write.allows(.write))
        #expect(AccessTokens.Scope.publish.allows(.write) && AccessTokens.Scope.publish.allows(.read))
        #expect(try AccessTokens(list: "publish:relay-token-0123456789:relay", source: "env").grant(for: "relay-token-0123456789")?.scope == .publish)
        // Generated from Protocols/: the access each method declares.
        #expect(CqrsCommandsV1.BankAccounts.Method.depositFunds.access == .write)
        #expect(CqrsCommandsV1.EventStore.Method.readAll.access == .read)
        #expect(CqrsBrokerV1.Broker.Method.commitOffsets.access == .read)
        #expect(JframeHealthV1.Health.Method.check.access == .public)
    }

    @Test func callsNeedAValidTokenWithTheRightScope() async throws {
        typealias Echo = JframeTestingV1.Echo
        // A write method, to see PERMISSION_DENIED: the echo service's methods are all read.
        let update = MethodDescriptor(service: Echo.name, method: "Get", kind: .unary, access: .write)
        let interceptor = BearerTokenServerInterceptor(tokens: Self.tokens)
        func run(_ header: String?, _ method: MethodDescriptor) async -> StatusCode? {
            let context = ServerContext(
                method: method, metadata: header.map { ["authorization": $0] } ?? [:], logger: .init(label: "test"))
            do {
                try await interceptor.intercept(context: context) { context in
                    #expect(context.principal != nil || method.access == .public)
                }
                return nil
            } catch let error as RPCError {
                return error.code
            } catch {
                return .unknown
            }
        }
        let read = Echo.Method.get
        #expect(await run(nil, read) == .unauthenticated)
        #expect(await run("Bearer nope-nope-nope-nope", read) == .unauthenticated)
        #expect(await run("Basic \(Self.read)", read) == .unauthenticated)
        #expect(await run("Bearer ", read) == .unauthenticated)
        #expect(await run("bearer \(Self.read)", read) == nil)
        #expect(await run("Bearer \(Self.read)", update) == .permissionDenied)
        #expect(await run("Bearer \(Self.write)", update) == nil)
        #expect(await run(nil, JframeHealthV1.Health.Method.check) == nil)

        // End to end in memory: the client interceptor sends the token.
        try await InProcessCallTests.withServer(
            interceptors: [interceptor], clientInterceptors: [BearerTokenClientInterceptor(token: Self.read)]
        ) { client in
            let echoed = try await Echo.Client(client).get(InProcessCallTests.message)
            #expect(echoed == InProcessCallTests.message)
        }
        try await InProcessCallTests.withServer(interceptors: [interceptor]) { client in
            await #expect(throws: RPCError.self) { _ = try await Echo.Client(client).get(InProcessCallTests.message) }
        }
    }
}
