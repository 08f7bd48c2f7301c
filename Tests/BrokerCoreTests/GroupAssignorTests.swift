import Testing

@testable import BrokerCore

@Suite struct GroupAssignorTests {
    func tp(_ topic: String, _ partition: Int) -> TopicPartition { TopicPartition(topic: topic, partition: partition) }

    @Test func partitionsAreSpreadEvenlyAndEveryOneIsAssignedOnce() {
        let result = GroupAssignor.assign(
            subscriptions: ["a": ["t"], "b": ["t"], "c": ["t"]], partitionCounts: ["t": 8], current: [:])
        let counts = result.values.map(\.count).sorted()
        #expect(counts == [2, 3, 3])
        #expect(Set(result.values.flatMap { $0 }) == Set((0..<8).map { tp("t", $0) }))
        #expect(result.values.map(\.count).reduce(0, +) == 8)
    }

    @Test func aJoiningMemberTakesOnlyWhatEvennessRequires() {
        let before = GroupAssignor.assign(subscriptions: ["a": ["t"], "b": ["t"]], partitionCounts: ["t": 6], current: [:])
        let after = GroupAssignor.assign(
            subscriptions: ["a": ["t"], "b": ["t"], "c": ["t"]], partitionCounts: ["t": 6], current: before)
        #expect(after["a"]!.isSubset(of: before["a"]!))
        #expect(after["b"]!.isSubset(of: before["b"]!))
        #expect(after["c"]!.count == 2)
    }

    @Test func membersGetOnlyTopicsTheySubscribeTo() {
        let result = GroupAssignor.assign(
            subscriptions: ["a": ["x"], "b": ["x", "y"]], partitionCounts: ["x": 2, "y": 3], current: [:])
        #expect(result["a"]!.allSatisfy { $0.topic == "x" })
        #expect(result["b"]!.filter { $0.topic == "y" }.count == 3)
        #expect(result.values.flatMap { $0 }.count == 5)
    }
}
