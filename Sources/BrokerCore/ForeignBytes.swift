public import LogStorage

/// What the broker's Kafka port stores that the jframe protocol cannot carry as it is: a key that
/// is not UTF-8, a value that is not JSON (Kafka's records are bytes; jframe's keys are strings
/// and its values JSON). The Kafka listener marks such a record with one hidden header, so the
/// jframe Fetch knows, without scanning every record it serves, which ones to send
/// base64-encoded (`keyBase64`, `valueBase64`); the Kafka Fetch drops the header, and both
/// protocols refuse user headers in its namespace (names starting with NUL).
public enum ForeignBytes {
    /// The hidden header's name.
    public static let headerKey = "\u{0}cqrs.bytes"
    /// Header names starting with this belong to the broker.
    public static let reservedPrefix = "\u{0}"

    /// The hidden header's value: `k` when the key is bytes, `v` when the value is.
    public static func marker(keyIsBytes: Bool, valueIsBytes: Bool) -> [UInt8]? {
        switch (keyIsBytes, valueIsBytes) {
        case (false, false): return nil
        case (true, false): return Array("k".utf8)
        case (false, true): return Array("v".utf8)
        case (true, true): return Array("kv".utf8)
        }
    }

    /// What a record's hidden header says, if it has one.
    public static func flags(_ headers: [RecordHeader]) -> (keyIsBytes: Bool, valueIsBytes: Bool) {
        guard let marker = headers.first(where: { $0.key == headerKey })?.value else { return (false, false) }
        return (marker.contains(UInt8(ascii: "k")), marker.contains(UInt8(ascii: "v")))
    }
}
