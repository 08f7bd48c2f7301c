import Contracts
import RPCCore
import Synchronization

/// `jframe.testing.v1.Echo`: one method per call kind, plus methods that sleep and fail on
/// request, for testing and benchmarking the protocol itself.
public final class EchoService: JframeTestingV1.Echo.ServiceProtocol {
    private typealias V1 = JframeTestingV1

    private struct Counts {
        var completed = 0
        var cancelled = 0
    }

    private let sleeps = Mutex(Counts())

    public init() {}

    public func get(_ request: JframeTestingV1.EchoMessage, context: ServerContext) async throws -> JframeTestingV1.EchoMessage {
        request
    }

    public func expand(
        _ request: JframeTestingV1.ExpandRequest, responses: MessageWriter<JframeTestingV1.EchoMessage>,
        context: ServerContext
    ) async throws {
        guard (0...100_000_000).contains(request.count) else {
            throw RPCError.invalidArgument(
                "count out of range",
                violations: [FieldViolation(field: "count", description: "must be 0 to 100000000, got \(request.count)")])
        }
        var message = request.message
        for index in 0..<request.count {
            message.amount = index
            try await responses.write(message)
        }
    }

    public func collect(
        _ requests: MessageStream<JframeTestingV1.EchoMessage>, context: ServerContext
    ) async throws -> JframeTestingV1.CollectResponse {
        var count = 0
        var total: Int64 = 0
        for try await message in requests {
            count += 1
            total += Int64(message.amount)
        }
        return V1.CollectResponse(count: count, totalAmount: total)
    }

    public func update(
        _ requests: MessageStream<JframeTestingV1.EchoMessage>, responses: MessageWriter<JframeTestingV1.EchoMessage>,
        context: ServerContext
    ) async throws {
        for try await var message in requests {
            message.note = message.note.uppercased()
            try await responses.write(message)
        }
    }

    public func sleep(_ request: JframeTestingV1.SleepRequest, context: ServerContext) async throws -> JframeTestingV1.SleepResponse {
        guard (0...60_000).contains(request.milliseconds) else {
            throw RPCError.invalidArgument(
                "milliseconds out of range",
                violations: [FieldViolation(field: "milliseconds", description: "must be 0 to 60000, got \(request.milliseconds)")])
        }
        do {
            try await Task.sleep(for: .milliseconds(request.milliseconds))
        } catch {
            sleeps.withLock { $0.cancelled += 1 }
            throw error
        }
        sleeps.withLock { $0.completed += 1 }
        return V1.SleepResponse(sleptMs: request.milliseconds)
    }

    public func fail(_ request: JframeTestingV1.FailRequest, context: ServerContext) async throws -> JframeTestingV1.EchoMessage {
        guard (1...16).contains(request.code) else {
            throw RPCError.invalidArgument(
                "code out of range", violations: [FieldViolation(field: "code", description: "must be 1 to 16, got \(request.code)")])
        }
        let code = StatusCode(rawValue: request.code)
        let message = request.message ?? "failed as asked with \(code.name)"
        if code == .invalidArgument {
            throw RPCError.invalidArgument(message, violations: [FieldViolation(field: "code", description: "asked to fail")])
        }
        throw RPCError(code: code, message: message)
    }

    public func stats(_ request: JframeTestingV1.StatsRequest, context: ServerContext) async throws -> JframeTestingV1.StatsResponse {
        let counts = sleeps.withLock { $0 }
        return V1.StatsResponse(sleepsCompleted: counts.completed, sleepsCancelled: counts.cancelled)
    }
}
