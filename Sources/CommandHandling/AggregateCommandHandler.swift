import Domain
import EventStore
import Foundation
import TracingSupport
import WallTime

/// The one path every aggregate command takes: load, check the stream expectation, decide,
/// append with the loaded version expected, remember the new state.
///
/// Commands on one stream take turns within the process (`AggregateRepository.locks`). When a writer elsewhere
/// appended between the load and the append, the store refuses it (wrong expected version) and
/// the command is decided again on the new state after a short random pause, up to
/// `maxAttempts` times; a caller that gave its own expected version gets ABORTED at once
/// instead, because it asked to act only on the state it saw.
public struct AggregateCommandHandler<Command: AggregateCommand>: CommandHandler {
    let repository: AggregateRepository
    let clock: any WallClock
    let maxAttempts: Int

    public init(repository: AggregateRepository, clock: any WallClock = SystemWallClock(), maxAttempts: Int = 10) {
        self.repository = repository
        self.clock = clock
        self.maxAttempts = maxAttempts
    }

    public func handle(_ command: Command, context: CommandContext) async throws -> CommandResult {
        try await repository.locks.withLock(command.streamId) { try await decideAndAppend(command, context: context) }
    }

    private func decideAndAppend(_ command: Command, context: CommandContext) async throws -> CommandResult {
        let streamId = command.streamId
        var attempt = 0
        while true {
            attempt += 1
            let (state, version) = try await Traced.span("load", attributes: [("cqrs.stream", streamId)]) {
                try await storeCall { try await repository.load(Command.Target.self, id: command.aggregateId) }
            }
            switch Command.expectation {
            case .new where version > 0: throw CommandError.alreadyExists("\(Command.Target.category) \(command.aggregateId) exists")
            case .existing where version == 0: throw CommandError.notFound("no \(Command.Target.category) \(command.aggregateId)")
            default: break
            }
            if let expected = context.expectedVersion, expected != version {
                throw CommandError.conflict(streamId: streamId, expected: expected, actual: version)
            }
            let decided: Result<[any DomainEvent], DomainError> = await Traced.span(
                "decide", attributes: [("cqrs.command", String(describing: Command.self))]
            ) {
                Result { () throws(DomainError) -> [any DomainEvent] in
                    try command.decide(state, context: DecisionContext(nowMs: clock.nowMilliseconds()))
                }
            }
            let events: [any DomainEvent]
            switch decided {
            case .success(let decidedEvents): events = decidedEvents
            case .failure(.invalid(let violations)): throw CommandError.invalid(violations)
            case .failure(.ruleBroken(let reason)): throw CommandError.ruleBroken(reason)
            }
            guard !events.isEmpty else {
                return CommandResult(aggregateId: command.aggregateId, streamId: streamId, version: version, position: 0, duplicate: false)
            }
            let traceParent = Traced.currentTraceParent
            let request = AppendRequest(
                streamId: streamId, expected: version == 0 ? .noStream : .exact(version),
                events: try events.map { try Self.newEvent($0, context: context, nowMs: clock.nowMilliseconds(), traceParent: traceParent) },
                commandId: context.commandId, commandDigest: context.commandDigest)
            do {
                let appended = try await Traced.span("append", attributes: [("cqrs.stream", streamId)]) {
                    try await repository.store.append(request)
                }
                if appended.duplicate {
                    // The store has this command id: nothing was appended, and the answer is the
                    // first append's, whose stream may not be this one (an account opened again
                    // with a new id).
                    repository.forget(streamId: streamId)
                    return .duplicate(of: appended)
                }
                let newState = state.applying(events)
                repository.remember(newState, streamId: streamId, version: appended.version)
                await repository.snapshotIfDue(newState, streamId: streamId, from: version, to: appended.version)
                return CommandResult(
                    aggregateId: command.aggregateId, streamId: streamId, version: appended.version, position: appended.position,
                    duplicate: false)
            } catch EventStoreError.wrongExpectedVersion(_, _, let actual) {
                repository.forget(streamId: streamId)
                if context.expectedVersion != nil || attempt >= maxAttempts {
                    throw CommandError.conflict(streamId: streamId, expected: version, actual: actual)
                }
                try await Task.sleep(for: .microseconds(Int.random(in: 0...(500 * attempt))))
            } catch let error as EventStoreError {
                throw Self.commandError(error)
            }
        }
    }

    /// The event as stored: a new id, the command as its cause, and the command's trace (its call's
    /// span, when recorded) so that the event's publish and apply join the command's trace.
    static func newEvent(_ event: any DomainEvent, context: CommandContext, nowMs: Int64, traceParent: String?) throws -> NewEvent {
        let encoded = try EventTypeRegistry.encode(event)
        var random = BufferedRandom()
        return NewEvent(
            eventId: UUIDv7.make(nowMs: nowMs, using: &random), type: encoded.type, schemaVersion: encoded.schemaVersion, data: encoded.data,
            correlationId: context.correlationId, causationId: context.commandId, traceParent: traceParent)
    }

    static func commandError(_ error: EventStoreError) -> CommandError {
        switch error {
        case .wrongExpectedVersion(let streamId, let expected, let actual):
            guard case .exact(let version) = expected else { return .rejectedByStore(error.description) }
            return .conflict(streamId: streamId, expected: version, actual: actual)
        case .eventIdConflict, .invalid: return .rejectedByStore(error.description)
        case .commandIdReused: return .commandIdReused(error.description)
        case .unavailable(let reason): return .storeUnavailable(reason)
        case .dataLoss(let reason): return .storeDamaged(reason)
        }
    }

    /// Runs a store read, turning its failures into `CommandError`s.
    private func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as EventStoreError {
            throw Self.commandError(error)
        } catch let error as EventDecodingError {
            throw CommandError.storeUnavailable("\(error)")
        }
    }
}
