import Contracts
import RPCCore
import Synchronization

/// `jframe.health.v1.Health`: the serving status of the server and of each service it hosts.
///
/// The binary sets statuses as it starts and stops: NOT_SERVING while starting and once graceful
/// shutdown begins, SERVING in between, so a load balancer stops sending work before calls are refused.
public final class HealthService: JframeHealthV1.Health.ServiceProtocol {
    public typealias Status = JframeHealthV1.ServingStatus
    public typealias V1 = JframeHealthV1

    private struct State {
        var statuses: [String: Status]
        var watchers: [Int: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
        var nextWatcher = 0
    }

    private let state: Mutex<State>

    /// - Parameter services: the services hosted; they and the server ("") start as `initial`.
    public init(services: [String], initial: Status = .notServing) {
        var statuses = ["": initial]
        for service in services { statuses[service] = initial }
        state = Mutex(State(statuses: statuses))
    }

    /// Sets the status of one service, or of the server with "".
    public func setStatus(_ status: Status, for service: String = "") {
        let watchers = state.withLock { state -> [AsyncStream<Status>.Continuation] in
            guard state.statuses[service] != status else { return [] }
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// Sets every service and the server to `status`.
    public func setAll(_ status: Status) {
        let services = state.withLock { Array($0.statuses.keys) }
        for service in services { setStatus(status, for: service) }
    }

    public func check(_ request: V1.HealthCheckRequest, context: ServerContext) async throws -> V1.HealthCheckResponse {
        let service = request.service ?? ""
        guard let status = state.withLock({ $0.statuses[service] }) else {
            throw RPCError(code: .notFound, message: "this server hosts no service \(service)")
        }
        return V1.HealthCheckResponse(status: status)
    }

    public func watch(
        _ request: V1.HealthCheckRequest, responses: MessageWriter<V1.HealthCheckResponse>, context: ServerContext
    ) async throws {
        let service = request.service ?? ""
        let (stream, continuation) = AsyncStream<Status>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> Int in
            state.nextWatcher += 1
            state.watchers[state.nextWatcher] = (service, continuation)
            continuation.yield(state.statuses[service] ?? .serviceUnknown)
            return state.nextWatcher
        }
        defer { _ = state.withLock { $0.watchers.removeValue(forKey: id) } }
        for await status in stream {
            try await responses.write(V1.HealthCheckResponse(status: status))
        }
        throw CancellationError()
    }
}
