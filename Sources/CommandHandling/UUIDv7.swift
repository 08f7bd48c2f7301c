import Checksums
import Foundation
import Synchronization
import WallTime

/// Identifiers for events, commands and new aggregates: RFC 9562 version 7 UUIDs, lowercase.
///
/// Why version 7 and not Foundation's `UUID()` (version 4): the first 48 bits are the Unix time
/// in milliseconds, so ids made in order sort in order, and the event store's unique index on
/// event ids takes each new one near the end instead of at a random page. Its random bits come
/// from the kernel in blocks (`BufferedRandom`), not a system call or two per id, nor, as
/// Foundation's `UUID()` does on Linux, opening and reading `/dev/urandom` each time.
public enum UUIDv7 {
    /// A new id for `nowMs` (milliseconds since the Unix epoch, UTC): 48 bits of time, the
    /// version, 74 random bits, the variant.
    public static func make(nowMs: Int64, using random: inout some RandomNumberGenerator) -> String {
        let high = (UInt64(truncatingIfNeeded: nowMs) << 16) | 0x7000 | (random.next() & 0x0FFF)
        let low = (random.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return format(high: high, low: low)
    }

    public static func make() -> String {
        var random = BufferedRandom()
        return make(nowMs: WallTime.nowMilliseconds(), using: &random)
    }

    /// `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx` from the two halves, most significant first.
    ///
    /// Written group by group into the string's buffer: a command makes three ids, and a loop
    /// over the 32 digits that tested for the dashes and indexed the buffer with bounds checks
    /// cost about 850 instructions an id.
    static func format(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            let out = buffer.baseAddress!
            Hex.write(high >> 32, digits: 8, to: out)
            out[8] = UInt8(ascii: "-")
            Hex.write(high >> 16, digits: 4, to: out + 9)
            out[13] = UInt8(ascii: "-")
            Hex.write(high, digits: 4, to: out + 14)
            out[18] = UInt8(ascii: "-")
            Hex.write(low >> 48, digits: 4, to: out + 19)
            out[23] = UInt8(ascii: "-")
            Hex.write(low, digits: 12, to: out + 24)
            return 36
        }
    }
}

/// The kernel's random bytes, read 4 KiB at a time from `/dev/urandom` (kept open; the same
/// CSPRNG as `getrandom`, which Swift's Glibc module does not declare) into one buffer the
/// process shares behind a lock, and handed out 8 bytes per `next()`, each once. Where the device
/// cannot be read it falls back to `SystemRandomNumberGenerator`.
///
/// Why: ids took two `getrandom` system calls each, several per command; a profile of the
/// command-service showed them (and the kernel's generator behind them) at 2–3% of its time.
public struct BufferedRandom: RandomNumberGenerator {
    private static let pool = Mutex(Pool())

    private struct Pool: ~Copyable {
        static let size = 4096
        var bytes = [UInt8](repeating: 0, count: Pool.size)
        var used = Pool.size

        let device = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

        mutating func next() -> UInt64 {
            if used + 8 > Pool.size {
                guard refill() else {
                    var system = SystemRandomNumberGenerator()
                    return system.next()
                }
            }
            defer { used += 8 }
            return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: used, as: UInt64.self) }
        }

        private mutating func refill() -> Bool {
            guard device >= 0 else { return false }
            let device = device
            let filled = bytes.withUnsafeMutableBytes { buffer -> Bool in
                var offset = 0
                while offset < buffer.count {
                    let count = read(device, buffer.baseAddress! + offset, buffer.count - offset)
                    if count > 0 {
                        offset += count
                    } else if count < 0, errno == EINTR {
                        continue
                    } else {
                        return false
                    }
                }
                return true
            }
            if filled { used = 0 }
            return filled
        }
    }

    public init() {}

    public mutating func next() -> UInt64 { Self.pool.withLock { $0.next() } }
}
