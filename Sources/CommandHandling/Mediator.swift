import Domain
import EventStore
import Logging
import WallTime

/// What travels with a command besides the command itself.
public struct CommandContext: Sendable {
    /// The command's id: the idempotency key and the causation id of its events.
    public var commandId: String
    /// Ties together everything one user action causes, across services.
    public var correlationId: String
    /// The version the caller expects the aggregate to be at (optimistic concurrency), if any.
    public var expectedVersion: Int64?
    /// A digest of what the command is (its method, target and payload; see `CommandDigest`),
    /// stored with its result so that a command id sent again with another command is refused
    /// instead of answered with the first one's result. Nil: not compared.
    public var commandDigest: String?
    /// The logger without the command's metadata.
    public var baseLogger: Logger
    /// Metadata for the command's log lines: the call's, and what behaviours add.
    public var logMetadata: Logger.Metadata
    /// The command's type, once `LoggingBehaviour` saw it: its log lines name it.
    public var commandType: Any.Type?
    /// What the command's own checks found, when the sender knew its type
    /// (`Mediator.send` of an `AggregateCommand`): `ValidationBehaviour` refuses on these. Nil:
    /// not known here, and the behaviour asks the command.
    var violations: [Violation]?

    /// A logger carrying `logMetadata` and, once `LoggingBehaviour` ran, the command's ids and
    /// type, built on each access (as `ServerContext.logger` is): setting a handler's metadata
    /// re-renders all of it, which cost a command more than the rest of its logging when nothing
    /// was logged. The ids and type are added here, not stored as metadata when the command
    /// arrives: three strings and a dictionary's growth were about 5,000 instructions of every
    /// command, for lines logged only on failure or at debug. Check the level first on the hot
    /// path.
    public var logger: Logger {
        var logger = baseLogger
        for (key, value) in logMetadata { logger[metadataKey: key] = value }
        if let commandType {
            logger[metadataKey: "correlation-id"] = "\(correlationId)"
            logger[metadataKey: "command-id"] = "\(commandId)"
            logger[metadataKey: "command"] = "\(commandType)"
        }
        return logger
    }

    public init(
        commandId: String, correlationId: String, expectedVersion: Int64? = nil, commandDigest: String? = nil, logger: Logger,
        logMetadata: Logger.Metadata = [:]
    ) {
        self.commandId = commandId
        self.commandDigest = commandDigest
        self.correlationId = correlationId
        self.expectedVersion = expectedVersion
        self.baseLogger = logger
        self.logMetadata = logMetadata
    }
}

/// What a handled command did.
public struct CommandResult: Sendable, Hashable {
    public var aggregateId: String
    public var streamId: String
    /// The aggregate's version after the command.
    public var version: Int64
    /// The global position of the command's last event: what a query waits for to read this write.
    public var position: Int64
    /// True when the command id was handled before and this is its first result.
    public var duplicate: Bool

    public init(aggregateId: String, streamId: String, version: Int64, position: Int64, duplicate: Bool) {
        self.aggregateId = aggregateId
        self.streamId = streamId
        self.version = version
        self.position = position
        self.duplicate = duplicate
    }
}

extension CommandResult {
    /// What a command whose id the store has already seen answers: the first append's result
    /// (its stream may not be the one this attempt decided on).
    static func duplicate(of earlier: AppendResult) -> CommandResult {
        CommandResult(
            aggregateId: splitStreamId(earlier.streamId)?.aggregateId ?? earlier.streamId, streamId: earlier.streamId,
            version: earlier.version, position: earlier.position, duplicate: true)
    }
}

/// Why a command was refused or failed; mapped to a status code once, at the RPC edge.
public enum CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalid([Violation])
    case notFound(String)
    case alreadyExists(String)
    case ruleBroken(String)
    /// The aggregate moved under the command (expected version mismatch or repeated races).
    case conflict(streamId: String, expected: Int64, actual: Int64)
    /// The event store refused the append's content (event id reuse).
    case rejectedByStore(String)
    /// The command id was used before for a different command (ALREADY_EXISTS).
    case commandIdReused(String)
    case storeUnavailable(String)
    /// The event store holds damaged or inconsistent data (DATA_LOSS): retrying does not help.
    case storeDamaged(String)
    /// No handler is registered for the command's type: a wiring mistake.
    case noHandler(String)

    public var description: String {
        switch self {
        case .invalid(let violations): return "invalid command: " + violations.map { "\($0.field) \($0.description)" }.joined(separator: "; ")
        case .notFound(let what), .alreadyExists(let what), .ruleBroken(let what), .rejectedByStore(let what), .commandIdReused(let what):
            return what
        case .conflict(let streamId, let expected, let actual): return "\(streamId) is at version \(actual), not the expected \(expected)"
        case .storeUnavailable(let reason): return "the event store is unavailable: \(reason)"
        case .storeDamaged(let reason): return "the event store is damaged: \(reason)"
        case .noHandler(let type): return "no handler for \(type)"
        }
    }
}

/// Handles one command type.
public protocol CommandHandler<Command>: Sendable {
    associatedtype Command: Sendable
    func handle(_ command: Command, context: CommandContext) async throws -> CommandResult
}

/// A step around every handler (validation, logging, metrics, idempotency): it may answer
/// itself, or call `next` and look at what comes back.
public protocol CommandBehaviour: Sendable {
    func handle(
        _ command: any Sendable, context: CommandContext, next: @Sendable (CommandContext) async throws -> CommandResult
    ) async throws -> CommandResult
}

/// Sends each command to the handler registered for its type, through the behaviours in order
/// (the first one registered is the outermost).
///
/// Built once at start-up (`register`), then shared read-only.
public struct Mediator: Sendable {
    public typealias AnyHandler = @Sendable (any Sendable, CommandContext) async throws -> CommandResult
    private var handlers: [ObjectIdentifier: AnyHandler] = [:]
    private let behaviours: [any CommandBehaviour]

    public init(behaviours: [any CommandBehaviour]) {
        self.behaviours = behaviours
    }

    public mutating func register<Handler: CommandHandler>(_ handler: Handler) {
        let key = ObjectIdentifier(Handler.Command.self)
        precondition(handlers[key] == nil, "two handlers for \(Handler.Command.self)")
        handlers[key] = { command, context in try await handler.handle(command as! Handler.Command, context: context) }
    }

    public func send<Command: Sendable>(_ command: Command, context: CommandContext) async throws -> CommandResult {
        try await dispatch(command, as: Command.self, context: context)
    }

    /// `send` of an aggregate's command, whose checks are known from its type here: they run now
    /// (they are pure) and `ValidationBehaviour` refuses on what they found at its place in the
    /// chain, rather than asking at run time whether the command is an `AggregateCommand` (a cast
    /// to a protocol with an associated type, about 1,400 instructions a command).
    public func send<Command: AggregateCommand>(_ command: Command, context: CommandContext) async throws -> CommandResult {
        var context = context
        context.violations = command.validate()
        return try await dispatch(command, as: Command.self, context: context)
    }

    private func dispatch(_ command: any Sendable, as type: Any.Type, context: CommandContext) async throws -> CommandResult {
        guard let handler = handlers[ObjectIdentifier(type)] else { throw CommandError.noHandler("\(type)") }
        return try await send(command, through: behaviours[...], to: handler, context: context)
    }

    /// The behaviours from the outermost in, then the handler. Each `next` is a closure that does
    /// not escape, so a command's chain lives in its task's own allocator rather than in a heap
    /// box per behaviour (as closures built ahead and stored did).
    private func send(
        _ command: any Sendable, through behaviours: ArraySlice<any CommandBehaviour>, to handler: AnyHandler, context: CommandContext
    ) async throws -> CommandResult {
        guard let behaviour = behaviours.first else { return try await handler(command, context) }
        return try await behaviour.handle(command, context: context) { context in
            try await send(command, through: behaviours.dropFirst(), to: handler, context: context)
        }
    }
}

/// The name of a command's type for logs and metrics (`DepositFunds`).
func commandName(_ command: any Sendable) -> String { "\(type(of: command))" }

extension Mediator {
    /// The write side assembled: logging, metrics, validation and idempotency around one
    /// `AggregateCommandHandler` per command of every domain. The service and the tests build it
    /// the same way.
    public static func commandSide(store: any EventStore, repository: AggregateRepository, clock: any WallClock = SystemWallClock()) -> Mediator {
        var mediator = Mediator(behaviours: [LoggingBehaviour(), MetricsBehaviour(), ValidationBehaviour(), IdempotencyBehaviour(store: store)])
        mediator.register(AggregateCommandHandler<OpenAccount>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<DepositFunds>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<WithdrawFunds>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<CloseAccount>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<PlaceOrder>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<CreateJob>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<UpdateJob>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<ArchiveJob>(repository: repository, clock: clock))
        mediator.register(AggregateCommandHandler<CreateApplication>(repository: repository, clock: clock))
        return mediator
    }
}
