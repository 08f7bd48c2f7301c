public import CommandHandling
public import EventStore
public import RPCCore

/// How the write side's errors reach clients: one status code per kind of refusal, decided here
/// once, with the domain's own words as the message. Handlers just throw them.
extension CommandError: RPCErrorConvertible {
    public var rpcError: RPCError {
        switch self {
        case .invalid(let violations):
            return .invalidArgument(description, violations: violations.map { FieldViolation(field: $0.field, description: $0.description) })
        case .notFound: return RPCError(code: .notFound, message: description)
        case .alreadyExists: return RPCError(code: .alreadyExists, message: description)
        case .ruleBroken: return RPCError(code: .failedPrecondition, message: description)
        case .conflict: return RPCError(code: .aborted, message: description)
        case .rejectedByStore: return RPCError(code: .invalidArgument, message: description)
        case .commandIdReused: return RPCError(code: .alreadyExists, message: description)
        case .storeUnavailable: return RPCError(code: .unavailable, message: description)
        case .storeDamaged: return RPCError(code: .dataLoss, message: description)
        case .noHandler: return RPCError(code: .unimplemented, message: description)
        }
    }
}

extension EventStoreError: RPCErrorConvertible {
    public var rpcError: RPCError {
        switch self {
        case .invalid(let reason): return RPCError(code: .invalidArgument, message: reason)
        case .unavailable: return RPCError(code: .unavailable, message: description)
        case .dataLoss: return RPCError(code: .dataLoss, message: description)
        case .wrongExpectedVersion: return RPCError(code: .aborted, message: description)
        case .eventIdConflict, .commandIdReused: return RPCError(code: .alreadyExists, message: description)
        }
    }
}
