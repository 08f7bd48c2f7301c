import Domain
import EventStore
import Logging
import Metrics
import MetricsSupport
import Synchronization
import WallTime

/// Refuses a malformed command before any I/O, listing every broken field at once.
public struct ValidationBehaviour: CommandBehaviour {
    public init() {}

    public func handle(
        _ command: any Sendable, context: CommandContext, next: @Sendable (CommandContext) async throws -> CommandResult
    ) async throws -> CommandResult {
        // Found by `Mediator.send` when it knew the command's type; else asked here.
        let violations = context.violations ?? (command as? any AggregateCommand)?.validate() ?? []
        if !violations.isEmpty { throw CommandError.invalid(violations) }
        return try await next(context)
    }
}

/// Logs each command with its correlation and command ids: failures at error; refusals and
/// successes at debug (refusals are the caller's business, and the RPC layer already logs every
/// failed call once; successes are the hot path).
public struct LoggingBehaviour: CommandBehaviour {
    public init() {}

    public func handle(
        _ command: any Sendable, context: CommandContext, next: @Sendable (CommandContext) async throws -> CommandResult
    ) async throws -> CommandResult {
        var context = context
        context.commandType = type(of: command)  // names it in `context.logger`'s lines
        let debugging = context.baseLogger.logLevel <= .debug
        do {
            let result = try await next(context)
            if debugging {
                context.logger.debug(
                    "command handled",
                    metadata: [
                        "stream": "\(result.streamId)", "version": "\(result.version)", "position": "\(result.position)",
                        "duplicate": "\(result.duplicate)",
                    ])
            }
            return result
        } catch let error as CommandError {
            switch error {
            case .storeUnavailable, .storeDamaged, .noHandler: context.logger.error("command failed", metadata: ["error": "\(error)"])
            default: if debugging { context.logger.debug("command refused", metadata: ["reason": "\(error)"]) }
            }
            throw error
        } catch {
            context.logger.error("command failed", metadata: ["error": "\(error)"])
            throw error
        }
    }
}

/// Counts commands by type and outcome (`commands_total`) and times them
/// (`command_duration_seconds`).
///
/// One lookup per command: a command type's histogram and its counters by outcome are kept together.
public final class MetricsBehaviour: CommandBehaviour {
    final class CommandMetrics: Sendable {
        let duration: Metrics.Timer
        private let outcomes: Mutex<[String: Counter]> = Mutex([:])
        private let makeCounter: @Sendable (String) -> Counter

        init(duration: Metrics.Timer, makeCounter: @escaping @Sendable (String) -> Counter) {
            self.duration = duration
            self.makeCounter = makeCounter
        }

        func count(_ outcome: String) -> Counter {
            outcomes.withLock { outcomes in
                if let counter = outcomes[outcome] { return counter }
                let counter = makeCounter(outcome)
                outcomes[outcome] = counter
                return counter
            }
        }
    }

    private let commands: MetricFamily<CommandMetrics> = {
        let counts = MetricFamily.counters("commands_total", labels: ["command", "outcome"])
        let durations = MetricFamily.timers("command_duration_seconds", labels: ["command"])
        return MetricFamily(labelNames: ["command"]) { dimensions in
            let command = dimensions[0].1
            return CommandMetrics(duration: durations(command)) { outcome in counts(command, outcome) }
        }
    }()

    public init() {}

    public func handle(
        _ command: any Sendable, context: CommandContext, next: @Sendable (CommandContext) async throws -> CommandResult
    ) async throws -> CommandResult {
        let name = commandName(command)
        let start = ContinuousClock.now
        let outcome: String
        let metrics = commands(name)
        defer {
            metrics.duration.recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
            metrics.count(outcome).increment()
        }
        do {
            let result = try await next(context)
            outcome = result.duplicate ? "duplicate" : "ok"
            return result
        } catch let error as CommandError {
            outcome = Self.outcome(error)
            throw error
        } catch {
            outcome = "error"
            throw error
        }
    }

    static func outcome(_ error: CommandError) -> String {
        switch error {
        case .invalid: return "invalid"
        case .notFound: return "not_found"
        case .alreadyExists: return "already_exists"
        case .ruleBroken: return "refused"
        case .conflict: return "conflict"
        case .rejectedByStore: return "rejected"
        case .commandIdReused: return "command_id_reused"
        case .storeUnavailable, .storeDamaged, .noHandler: return "error"
        }
    }
}

/// The same command id twice returns the first result and appends nothing.
///
/// The store enforces it: an append whose command id it has seen, checked inside the append's
/// transaction, appends nothing and returns the first append's result (so two copies racing
/// append once). What this behaviour adds is the answer for a retry whose second decision goes
/// another way: a withdrawal retried after the first one emptied the account is refused by the
/// rules, or an account opened again finds its stream existing. When the command is refused, or
/// decides to append nothing, the store's record of the command id is looked up and, if the
/// command was carried out before, its first result is returned.
///
/// Why after and not before: looking the id up first costs every command a read of its own
/// (about a tenth of a deposit's CPU in the service, perf at one client), to spare the rare
/// retry a second decision.
public struct IdempotencyBehaviour: CommandBehaviour {
    let store: any EventStore

    public init(store: any EventStore) { self.store = store }

    public func handle(
        _ command: any Sendable, context: CommandContext, next: @Sendable (CommandContext) async throws -> CommandResult
    ) async throws -> CommandResult {
        let result: CommandResult
        do {
            result = try await next(context)
        } catch let error as CommandError {
            switch error {
            case .storeUnavailable, .noHandler: throw error
            default: break
            }
            if let earlier = try await firstResult(of: context) { return earlier }
            throw error
        }
        if !result.duplicate, result.position == 0, let earlier = try await firstResult(of: context) { return earlier }
        return result
    }

    /// The first result of the context's command id, if it was the same command.
    private func firstResult(of context: CommandContext) async throws -> CommandResult? {
        let earlier: AppendResult?
        do {
            earlier = try await store.commandResult(context.commandId)
        } catch {
            throw CommandError.storeUnavailable("\(error)")
        }
        guard let earlier else { return nil }
        do {
            try AppendRules.checkSameCommand(context.commandId, digest: context.commandDigest, earlier: earlier)
        } catch {
            throw CommandError.commandIdReused("\(error)")
        }
        return CommandResult.duplicate(of: earlier)
    }
}
