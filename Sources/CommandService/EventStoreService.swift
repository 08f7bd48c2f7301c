import CommandHandling
import Contracts
import EventStore
import Outbox
import RPCCore
import WallTime

/// cqrs.commands.v1.EventStore: the store's history, read-only, and the relay's progress.
public struct EventStoreService: CommandsAPI.EventStore.ServiceProtocol {
    let store: any EventStore
    let relayStatus: @Sendable () -> OutboxRelay.Status
    static let defaultPage = 500

    public init(store: any EventStore, relayStatus: @escaping @Sendable () -> OutboxRelay.Status) {
        self.store = store
        self.relayStatus = relayStatus
    }

    public func readStream(_ request: CommandsAPI.ReadStreamRequest, context: ServerContext) async throws -> CommandsAPI.ReadStreamResponse {
        let from = try Self.start(request.fromVersion, "fromVersion")
        let maxCount = request.maxCount ?? Self.defaultPage
        let events = try await store.readStream(request.streamId, fromVersion: from, maxCount: maxCount)
        let next = events.last.map { $0.streamVersion + 1 } ?? from
        let version = try await store.streamVersion(request.streamId)
        let end = version < next
        return CommandsAPI.ReadStreamResponse(events: events.map(Self.message), nextVersion: next, endOfStream: end)
    }

    public func readAll(_ request: CommandsAPI.ReadAllRequest, context: ServerContext) async throws -> CommandsAPI.ReadAllResponse {
        let from = try Self.start(request.fromPosition, "fromPosition")
        let head = try await store.headPosition()
        let events = try await store.readAll(fromPosition: from, maxCount: request.maxCount ?? Self.defaultPage)
        return Self.page(events, from: from, head: max(head, events.last?.position ?? 0))
    }

    public func subscribeAll(
        _ request: CommandsAPI.SubscribeAllRequest, responses: MessageWriter<CommandsAPI.ReadAllResponse>, context: ServerContext
    ) async throws {
        var from = try Self.start(request.fromPosition, "fromPosition")
        let maxCount = request.maxCount ?? Self.defaultPage
        while !Task.isCancelled {
            let head = try await store.headPosition()
            let events = try await store.readAll(fromPosition: from, maxCount: maxCount)
            if events.isEmpty {
                _ = await store.waitForEvents(after: from - 1, timeout: .seconds(5))
                continue
            }
            let page = Self.page(events, from: from, head: max(head, events.last!.position))
            try await responses.write(page)
            from = page.nextPosition
        }
    }

    public func getStatus(_ request: CommandsAPI.GetStatusRequest, context: ServerContext) async throws -> CommandsAPI.StoreStatus {
        let relay = try await relayProgress()
        return CommandsAPI.StoreStatus(
            headPosition: try await store.headPosition(), publishedPosition: relay.publishedPosition,
            brokerConnected: relay.brokerConnected, lastError: relay.lastError, writeRefusal: store.writeRefusal)
    }

    /// The relay's status. A replica standing by publishes nothing itself; the position it
    /// reports is the one the lease holder last saved in the shared store (its checkpoint), so
    /// every replica tells how far the events are published.
    func relayProgress() async throws -> OutboxRelay.Status {
        var relay = relayStatus()
        if relay.standingBy {
            relay.publishedPosition = try await store.checkpoint(OutboxRelay.Options().checkpointName) ?? 0
        }
        return relay
    }

    public func verify(
        _ request: CommandsAPI.VerifyRequest, responses: MessageWriter<CommandsAPI.VerifyProgress>, context: ServerContext
    ) async throws {
        let pageSize = request.pageSize ?? 1000
        guard (1...10_000).contains(pageSize) else {
            throw RPCError.invalidArgument(
                "pageSize is 1 to 10000", violations: [FieldViolation(field: "pageSize", description: "must be 1 to 10000")])
        }
        guard let store = store as? any VerifiableEventStore else {
            throw RPCError(code: .unimplemented, message: "this event store cannot verify itself")
        }
        let report = try await store.verify(pageSize: pageSize) { progress in
            try await responses.write(Self.message(progress, done: false))
        }
        try await responses.write(Self.message(report, done: true))
        context.logger.notice(
            "verified the event store", metadata: ["events": "\(report.eventsChecked)", "problems": "\(report.problemCount)"])
    }

    static func message(_ report: StoreVerification, done: Bool) -> CommandsAPI.VerifyProgress {
        CommandsAPI.VerifyProgress(
            headPosition: report.headPosition, eventsChecked: report.eventsChecked, streams: report.streams, problems: report.problems,
            problemCount: report.problemCount, writeRefusal: report.writeRefusal, done: done)
    }

    static func start(_ value: Int64?, _ field: String) throws -> Int64 {
        let value = value ?? 1
        guard value >= 1 else {
            throw RPCError.invalidArgument("\(field) starts at 1", violations: [FieldViolation(field: field, description: "must be at least 1")])
        }
        return value
    }

    static func page(_ events: [RecordedEvent], from: Int64, head: Int64) -> CommandsAPI.ReadAllResponse {
        CommandsAPI.ReadAllResponse(events: events.map(message), nextPosition: events.last.map { $0.position + 1 } ?? from, headPosition: head)
    }

    /// A stored event as readers get it: in its type's current shape (`inCurrentShape`).
    static func message(_ stored: RecordedEvent) -> CommandsAPI.StoredEvent {
        let event = stored.inCurrentShape()
        return CommandsAPI.StoredEvent(
            eventId: event.eventId, streamId: event.streamId, type: event.type, schemaVersion: event.schemaVersion,
            streamVersion: event.streamVersion, position: event.position, recordedAt: iso8601(milliseconds: event.recordedAt),
            correlationId: event.correlationId, causationId: event.causationId, data: RawJSON(unchecked: event.data))
    }
}
