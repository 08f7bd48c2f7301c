import Partitioning
import Testing

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
