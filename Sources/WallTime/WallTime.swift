#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The wall clock every service reads for the times it stores (event times, record timestamps,
/// retention, parked-at), in milliseconds since the Unix epoch, UTC.
///
/// One place, so that a fault-injection test can run a process with its clock off: with
/// `JFRAME_CLOCK_SKEW_MS` set (read once, at first use) every reading is shifted by that many
/// milliseconds, as if the machine's clock were wrong. Monotonic clocks (timeouts, sleeps) are
/// not shifted, as they are not on a machine whose wall clock is wrong. Why not libfaketime:
/// under it a Swift program's `Task.sleep` never returns, even at an offset of zero.
public enum WallTime {
    /// The skew from `JFRAME_CLOCK_SKEW_MS`; 0 when unset or not a whole number.
    public static let skewMilliseconds: Int64 = {
        guard let text = getenv("JFRAME_CLOCK_SKEW_MS").map({ String(cString: $0) }), let skew = Int64(text) else { return 0 }
        return skew
    }()

    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000 + skewMilliseconds
    }
}
