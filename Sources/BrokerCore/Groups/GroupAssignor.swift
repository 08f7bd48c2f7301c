/// A topic and one of its partitions.
public struct TopicPartition: Hashable, Sendable, Comparable, Codable {
    public var topic: String
    public var partition: Int

    public init(topic: String, partition: Int) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}

/// Spreads partitions across a group's members: per topic, among the members subscribed to it,
/// as evenly as possible (counts differ by at most one), keeping each partition with its current
/// owner whenever that stays even, so a rebalance moves as few partitions as it can.
enum GroupAssignor {
    /// - Parameters:
    ///   - subscriptions: member id -> topics it consumes.
    ///   - partitionCounts: topic -> number of partitions.
    ///   - current: member id -> partitions it is assigned now.
    static func assign(
        subscriptions: [String: [String]], partitionCounts: [String: Int], current: [String: Set<TopicPartition>]
    ) -> [String: Set<TopicPartition>] {
        var result = subscriptions.mapValues { _ in Set<TopicPartition>() }
        var load = subscriptions.mapValues { _ in 0 }
        let topics = Set(subscriptions.values.joined()).sorted()
        for topic in topics {
            guard let count = partitionCounts[topic], count > 0 else { continue }
            let members = subscriptions.filter { $0.value.contains(topic) }.keys.sorted()
            let base = count / members.count
            var extra = count % members.count
            var held = Dictionary(uniqueKeysWithValues: members.map { ($0, 0) })
            func canTake(_ member: String) -> Bool { held[member]! < base || (held[member]! == base && extra > 0) }
            func give(_ partition: TopicPartition, to member: String) {
                if held[member]! == base { extra -= 1 }
                held[member]! += 1
                load[member]! += 1
                result[member]!.insert(partition)
            }
            var unassigned: [TopicPartition] = []
            for p in 0..<count {
                let partition = TopicPartition(topic: topic, partition: p)
                if let owner = members.first(where: { current[$0]?.contains(partition) == true }), canTake(owner) {
                    give(partition, to: owner)
                } else {
                    unassigned.append(partition)
                }
            }
            for partition in unassigned {
                let member = members.filter(canTake).min { (held[$0]!, load[$0]!, $0) < (held[$1]!, load[$1]!, $1) }!
                give(partition, to: member)
            }
        }
        return result
    }
}
