import CommandHandling
import EventStore
import RPCCore

/// How the write side's errors reach clients: one status code per kind of refusal, decided here
/// once, with the domain's own words as the message.
enum CommandStatus {
    static func rpcError(for error: any Error) -> any Error {
        switch error {
        case let error as RPCError: return error
        case let error as CommandError: return rpcError(for: error)
        case let error as EventStoreError: return rpcError(for: error)
        default: return error
        }
    }

    static func rpcError(for error: CommandError) -> RPCError {
        switch error {
        case .invalid(let violations):
            return .invalidArgument(error.description, violations: violations.map { FieldViolation(field: $0.field, description: $0.description) })
        case .notFound: return RPCError(code: .notFound, message: error.description)
        case .alreadyExists: return RPCError(code: .alreadyExists, message: error.description)
        case .ruleBroken: return RPCError(code: .failedPrecondition, message: error.description)
        case .conflict: return RPCError(code: .aborted, message: error.description)
        case .rejectedByStore: return RPCError(code: .invalidArgument, message: error.description)
        case .commandIdReused: return RPCError(code: .alreadyExists, message: error.description)
        case .storeUnavailable: return RPCError(code: .unavailable, message: error.description)
        case .storeDamaged: return RPCError(code: .dataLoss, message: error.description)
        case .noHandler: return RPCError(code: .unimplemented, message: error.description)
        }
    }

    static func rpcError(for error: EventStoreError) -> RPCError {
        switch error {
        case .invalid(let reason): return RPCError(code: .invalidArgument, message: reason)
        case .unavailable: return RPCError(code: .unavailable, message: error.description)
        case .dataLoss: return RPCError(code: .dataLoss, message: error.description)
        case .wrongExpectedVersion: return RPCError(code: .aborted, message: error.description)
        case .eventIdConflict, .commandIdReused: return RPCError(code: .alreadyExists, message: error.description)
        }
    }
}

/// Runs a handler body with the write side's errors turned into statuses.
func withCommandStatus<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw CommandStatus.rpcError(for: error)
    }
}
