/// int64 members travel as decimal strings, as in the proto3 JSON mapping, because JSON readers
/// in many languages hold numbers as doubles and would round values above 2^53. On the way in a
/// plain number is accepted too, as proto3 JSON parsers do.
extension KeyedDecodingContainer {
    public func decodeInt64String(forKey key: Key) throws -> Int64 {
        if let text = try? decode(String.self, forKey: key) {
            guard let value = JSONScanner.decimalInt64(text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: JSONScanner.notDecimalInt64(text))
            }
            return value
        }
        return try decode(Int64.self, forKey: key)
    }

    public func decodeInt64StringIfPresent(forKey key: Key) throws -> Int64? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeInt64String(forKey: key)
    }

    public func decodeInt64Strings(forKey key: Key) throws -> [Int64] {
        let texts = try decode([String].self, forKey: key)
        return try texts.map { text in
            guard let value = JSONScanner.decimalInt64(text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: JSONScanner.notDecimalInt64(text))
            }
            return value
        }
    }

    public func decodeInt64StringsIfPresent(forKey key: Key) throws -> [Int64]? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeInt64Strings(forKey: key)
    }
}

extension KeyedEncodingContainer {
    public mutating func encodeInt64String(_ value: Int64, forKey key: Key) throws {
        try encode(String(value), forKey: key)
    }

    public mutating func encodeInt64StringIfPresent(_ value: Int64?, forKey key: Key) throws {
        if let value { try encode(String(value), forKey: key) }
    }

    public mutating func encodeInt64Strings(_ values: [Int64], forKey key: Key) throws {
        try encode(values.map(String.init), forKey: key)
    }

    public mutating func encodeInt64StringsIfPresent(_ values: [Int64]?, forKey key: Key) throws {
        if let values { try encode(values.map(String.init), forKey: key) }
    }
}
