import LogStorage

/// What the broker refuses, in its own words; the service layer maps each case to a status code.
public enum BrokerError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownTopic(String)
    case topicExists(String)
    case unknownPartition(topic: String, partition: Int, partitions: Int)
    /// A request field breaks a rule.
    case invalid(field: String, reason: String)
    /// A record or request over a configured limit.
    case tooLarge(String)
    /// What the request asks for would pass a budget of the broker's (partitions).
    case overBudget(String)
    /// The partition could not be opened (for example it is corrupt) or went offline.
    case partitionUnavailable(topic: String, partition: Int, reason: String)
    case unknownGroup(String)
    /// The member left or timed out; it must join again.
    case unknownMember(group: String, memberId: String)
    /// A commit carries an old generation: the group was rebalanced since.
    case staleGeneration(group: String, sent: Int, current: Int)
    /// A member committed for a partition it does not own, or a group with members got a commit
    /// from outside.
    case notOwner(group: String, topic: String, partition: Int)
    case storage(StorageError)

    public var description: String {
        switch self {
        case .unknownTopic(let name): return "topic \(name) does not exist"
        case .topicExists(let name): return "topic \(name) already exists"
        case .unknownPartition(let topic, let partition, let count):
            return "topic \(topic) has no partition \(partition) (it has \(count))"
        case .invalid(let field, let reason): return "\(field): \(reason)"
        case .tooLarge(let what), .overBudget(let what): return what
        case .partitionUnavailable(let topic, let partition, let reason):
            return "partition \(topic)/\(partition) is unavailable: \(reason)"
        case .unknownGroup(let group): return "group \(group) does not exist"
        case .unknownMember(let group, let member):
            return "member \(member) is not in group \(group) (it left or its session timed out): join again"
        case .staleGeneration(let group, let sent, let current):
            return "generation \(sent) of group \(group) is stale (now \(current)): heartbeat, then commit again"
        case .notOwner(let group, let topic, let partition):
            return "this member of group \(group) does not own \(topic)/\(partition)"
        case .storage(let error): return error.description
        }
    }
}
