import BrokerCore
import LogStorage
import RPCCore

/// How the broker's errors reach clients: one status code per kind of failure, with the
/// broker's own words as the message.
enum BrokerStatus {
    static func rpcError(for error: any Error) -> any Error {
        switch error {
        case let error as RPCError: return error
        case let error as BrokerError: return rpcError(for: error)
        case let error as StorageError: return rpcError(for: error)
        default: return error
        }
    }

    static func rpcError(for error: BrokerError) -> RPCError {
        switch error {
        case .unknownTopic, .unknownPartition, .unknownGroup: return RPCError(code: .notFound, message: error.description)
        case .topicExists: return RPCError(code: .alreadyExists, message: error.description)
        case .invalid(let field, let reason):
            return .invalidArgument(error.description, violations: [FieldViolation(field: field, description: reason)])
        case .tooLarge, .overBudget: return RPCError(code: .resourceExhausted, message: error.description)
        case .partitionUnavailable: return RPCError(code: .unavailable, message: error.description)
        case .unknownMember, .notOwner: return RPCError(code: .failedPrecondition, message: error.description)
        case .staleGeneration: return RPCError(code: .aborted, message: error.description)
        case .storage(let storage): return rpcError(for: storage)
        }
    }

    static func rpcError(for error: StorageError) -> RPCError {
        switch error {
        case .offsetOutOfRange: return RPCError(code: .outOfRange, message: error.description)
        case .outOfOrderSequence: return RPCError(code: .failedPrecondition, message: error.description)
        case .tooLarge: return RPCError(code: .resourceExhausted, message: error.description)
        case .corruption: return RPCError(code: .dataLoss, message: error.description)
        case .offline, .io: return RPCError(code: .unavailable, message: error.description)
        }
    }
}

/// Runs a handler body with the broker's errors turned into statuses.
func withBrokerStatus<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw BrokerStatus.rpcError(for: error)
    }
}
