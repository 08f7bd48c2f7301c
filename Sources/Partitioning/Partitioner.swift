/// Chooses a record's partition from its key exactly as Kafka's default partitioner does
/// (murmur2 of the key's bytes, sign bit cleared, modulo the partition count), so a key lands
/// on the same partition across restarts, clients and languages.
public enum Partitioner {
    public static func partition(forKey key: [UInt8], partitions: Int) -> Int {
        Int(murmur2(key) & 0x7FFF_FFFF) % partitions
    }

    /// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed 0x9747b28c.
    public static func murmur2(_ data: [UInt8]) -> Int32 {
        let m: UInt32 = 0x5BD1_E995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = 0x9747_B28C ^ UInt32(truncatingIfNeeded: length)
        let blocks = length / 4
        for i in 0..<blocks {
            let base = i * 4
            var k = UInt32(data[base]) | UInt32(data[base + 1]) << 8 | UInt32(data[base + 2]) << 16 | UInt32(data[base + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = blocks * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            fallthrough
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            fallthrough
        case 1:
            h ^= UInt32(data[tail])
            h = h &* m
        default: break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }
}
