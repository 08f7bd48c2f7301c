public import BrokerCore
public import LogStorage
public import RPCCore

/// How the broker's errors reach clients: one status code per kind of failure, with the
/// broker's own words as the message.
extension BrokerError: RPCErrorConvertible {
    public var rpcError: RPCError {
        switch self {
        case .unknownTopic, .unknownPartition, .unknownGroup: return RPCError(code: .notFound, message: description)
        case .topicExists: return RPCError(code: .alreadyExists, message: description)
        case .invalid(let field, let reason):
            return .invalidArgument(description, violations: [FieldViolation(field: field, description: reason)])
        case .tooLarge, .overBudget: return RPCError(code: .resourceExhausted, message: description)
        case .partitionUnavailable: return RPCError(code: .unavailable, message: description)
        case .unknownMember, .notOwner: return RPCError(code: .failedPrecondition, message: description)
        case .staleGeneration: return RPCError(code: .aborted, message: description)
        case .storage(let storage): return storage.rpcError
        }
    }
}

extension StorageError: RPCErrorConvertible {
    public var rpcError: RPCError {
        switch self {
        case .offsetOutOfRange: return RPCError(code: .outOfRange, message: description)
        case .outOfOrderSequence: return RPCError(code: .failedPrecondition, message: description)
        case .tooLarge: return RPCError(code: .resourceExhausted, message: description)
        case .corruption: return RPCError(code: .dataLoss, message: description)
        case .offline, .io: return RPCError(code: .unavailable, message: description)
        }
    }
}
