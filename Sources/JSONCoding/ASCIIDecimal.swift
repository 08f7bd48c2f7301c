/// Integers written as ASCII decimal digits straight into a byte array.
///
/// Why not `String(value).utf8`: that makes a String per number first. Numbers are in every
/// message (positions, versions, amounts) and every row a rebuild sends as `COPY` text, and the
/// String was most of the cost of writing them.
public enum ASCIIDecimal {
    /// Appends `value` as `String(value)` writes it: the digits made right to left in a buffer on
    /// the stack, then appended at once.
    @inlinable
    public static func append(_ value: Int64, to bytes: inout [UInt8]) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // The magnitude as unsigned, so Int64.min has one too; UInt64 has at most 20 digits.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var magnitude = value.magnitude
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }
}
