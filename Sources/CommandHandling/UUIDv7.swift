import Foundation
import WallTime

/// Identifiers for events, commands and new aggregates: RFC 9562 version 7 UUIDs, lowercase.
///
/// Why version 7 and not Foundation's `UUID()` (version 4): the first 48 bits are the Unix time
/// in milliseconds, so ids made in order sort in order, and the event store's unique index on
/// event ids takes each new one near the end instead of at a random page. And making one costs
/// two `getrandom` calls rather than, on Linux, opening and reading `/dev/urandom` each time,
/// which profiling showed on every command.
public enum UUIDv7 {
    /// A new id for `nowMs` (milliseconds since the Unix epoch, UTC): 48 bits of time, the
    /// version, 74 random bits, the variant.
    public static func make(nowMs: Int64, using random: inout some RandomNumberGenerator) -> String {
        let high = (UInt64(truncatingIfNeeded: nowMs) << 16) | 0x7000 | (random.next() & 0x0FFF)
        let low = (random.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return format(high: high, low: low)
    }

    public static func make() -> String {
        var random = SystemRandomNumberGenerator()
        return make(nowMs: WallTime.nowMilliseconds(), using: &random)
    }

    /// `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx` from the two halves, most significant first.
    static func format(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            for digit in 0..<32 {
                if digit == 8 || digit == 12 || digit == 16 || digit == 20 {
                    buffer[index] = UInt8(ascii: "-")
                    index += 1
                }
                let word = digit < 16 ? high : low
                let nibble = UInt8((word >> (UInt64(15 - digit % 16) * 4)) & 0xF)
                buffer[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                index += 1
            }
            return index
        }
    }
}
