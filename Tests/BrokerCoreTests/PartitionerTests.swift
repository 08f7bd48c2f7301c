import Partitioning
import Testing

@testable import BrokerCore

@Suite struct PartitionerTests {
    /// The vectors of Kafka's `UtilsTest.testMurmur2`.
    @Test func murmur2MatchesKafka() {
        #expect(Partitioner.murmur2(Array("21".utf8)) == -973_932_308)
        #expect(Partitioner.murmur2(Array("foobar".utf8)) == -790_332_482)
        #expect(Partitioner.murmur2(Array("a-little-bit-long-string".utf8)) == -985_981_536)
        #expect(Partitioner.murmur2(Array("a-little-bit-longer-string".utf8)) == -1_486_304_829)
        #expect(Partitioner.murmur2(Array("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8".utf8)) == -58_897_971)
        #expect(Partitioner.murmur2(Array("abc".utf8)) == 479_470_107)
    }

    @Test func aKeyAlwaysLandsOnTheSamePartition() {
        for key in ["order-1", "order-2", "acct-000042", ""] {
            let first = Partitioner.partition(forKey: Array(key.utf8), partitions: 12)
            #expect((0..<12).contains(first))
            #expect(Partitioner.partition(forKey: Array(key.utf8), partitions: 12) == first)
        }
    }
}

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
