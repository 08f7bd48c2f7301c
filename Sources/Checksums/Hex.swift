/// Lowercase hexadecimal, for digests, signatures and keys: written per command and per
/// published event, so without Foundation's `String(format:)` (a formatter per byte).
public enum Hex {
    /// Any bytes: contiguous ones written in place, others (a digest type) gathered first.
    public static func string(_ bytes: some Sequence<UInt8>) -> String {
        if let string = bytes.withContiguousStorageIfAvailable({ string(UnsafeRawBufferPointer($0)) }) { return string }
        return Array(bytes).withUnsafeBytes { string($0) }
    }

    /// The same from contiguous bytes (a digest's `withUnsafeBytes`), written straight into the
    /// string's storage: a digest iterated as a `Sequence` went byte by byte through its
    /// iterator into a growing array, about 1% of a command's CPU.
    public static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            guard var out = buffer.baseAddress else { return 0 }
            let table = lowercaseDigits.utf8Start
            for byte in bytes {
                out[0] = table[Int(byte >> 4)]
                out[1] = table[Int(byte & 0x0F)]
                out += 2
            }
            return bytes.count * 2
        }
    }

    /// Writes the low `count` digits of `value` at `out`, most significant first: for text
    /// that puts separators between groups of digits (a UUID), written into its own buffer.
    @inlinable
    public static func write(_ value: UInt64, digits count: Int, to out: UnsafeMutablePointer<UInt8>) {
        let table = lowercaseDigits.utf8Start
        var value = value
        var index = count
        while index > 0 {
            index -= 1
            out[index] = table[Int(value & 0xF)]
            value >>= 4
        }
    }

    @usableFromInline static let lowercaseDigits: StaticString = "0123456789abcdef"

    /// The bytes of an even-length hexadecimal text, or nil if it is not one.
    public static func bytes(_ text: some StringProtocol) -> [UInt8]? {
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}
