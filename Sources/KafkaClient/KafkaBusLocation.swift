/// The services' `--bus` flag (command-service publishes there, query-service consumes there).
public enum BusFlag {
    public static let help =
        "The event bus: kafka://host:port[,host:port…][?property=value&…] for any Kafka-compatible cluster (Kafka, Redpanda, this broker's --kafka-listen port), through librdkafka, whose properties the query sets (security.protocol=SASL_SSL&sasl.mechanism=PLAIN&…); when not given, the broker at --broker over jframe. Env: CQRS_BUS."

    /// nil when the flag is not given (our broker over jframe), else the Kafka bus it names.
    public static func kafkaLocation(_ value: String?) throws -> KafkaBusLocation? {
        guard let value, !value.isEmpty else { return nil }
        return try KafkaBusLocation(url: value)
    }
}

/// Where a Kafka-compatible cluster is, as the services take it with `--bus`:
/// `kafka://host:port[,host:port…][?property=value&…]`. The hosts are the bootstrap servers;
/// the query parameters are librdkafka configuration properties (`security.protocol`,
/// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, `linger.ms`, …), percent-decoded and
/// applied over the bus's own defaults, so any cluster a librdkafka client reaches (Kafka,
/// Redpanda, a managed service behind SASL and TLS) is reachable without a flag per property.
///
/// The properties the bus's guarantees rest on are not overridable: see `reserved`.
public struct KafkaBusLocation: Sendable, Hashable, CustomStringConvertible {
    /// A `--bus` value that is not a Kafka bus location, with why.
    public struct Invalid: Error, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// `host:port` of each bootstrap server, in the order given.
    public var bootstrapServers: [String]
    /// librdkafka properties from the query, in the order given.
    public var properties: [Property]

    public struct Property: Sendable, Hashable {
        public var name: String
        public var value: String
    }

    /// Properties the bus sets itself because its guarantees depend on them: idempotent,
    /// fully acknowledged publishing; offsets committed only after a batch is handled; the
    /// consumer group the service is told to use.
    public static let reserved: Set<String> = [
        "bootstrap.servers", "metadata.broker.list", "enable.idempotence", "acks", "request.required.acks", "group.id",
        "enable.auto.commit", "enable.auto.offset.store", "auto.offset.reset", "transactional.id",
    ]

    public init(bootstrapServers: [String], properties: [Property] = []) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    /// Parses a `kafka://` URL; throws `Invalid` saying what is wrong.
    public init(url: String) throws {
        let scheme = "kafka://"
        guard url.hasPrefix(scheme) else {
            throw Invalid(description: "a Kafka bus is kafka://host:port[,host:port…][?property=value&…], not '\(Self.redacted(url))'")
        }
        let rest = url.dropFirst(scheme.count)
        let hostPart = rest.prefix { $0 != "?" && $0 != "/" }
        var query = rest.dropFirst(hostPart.count)
        if query.hasPrefix("/") { query = query.drop { $0 == "/" } }
        var servers: [String] = []
        for server in hostPart.split(separator: ",", omittingEmptySubsequences: false) {
            guard let colon = server.lastIndex(of: ":"), colon != server.startIndex,
                let port = Int(server[server.index(after: colon)...]), (1...65535).contains(port)
            else {
                throw Invalid(description: "each bootstrap server of a Kafka bus is host:port (port 1 to 65535), not '\(server)'")
            }
            servers.append(String(server))
        }
        var properties: [Property] = []
        if query.hasPrefix("?") {
            for pair in query.dropFirst().split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, let name = Self.percentDecoded(parts[0]), !name.isEmpty, let value = Self.percentDecoded(parts[1]) else {
                    throw Invalid(description: "a Kafka bus's query is property=value pairs joined by &, not '\(Self.redacted(String(pair)))'")
                }
                guard !Self.reserved.contains(name) else {
                    throw Invalid(description: "\(name) is set by the bus itself (its guarantees depend on it) and cannot be given in --bus")
                }
                properties.append(Property(name: name, value: value))
            }
        } else if !query.isEmpty {
            throw Invalid(description: "a Kafka bus is kafka://host:port[,host:port…][?property=value&…], not '\(Self.redacted(url))'")
        }
        self.init(bootstrapServers: servers, properties: properties)
    }

    /// The location with secrets (any property whose name says password, secret or key) hidden:
    /// for logs and errors.
    public var description: String {
        let query = properties.map { "\($0.name)=\(Self.isSecret($0.name) ? "***" : $0.value)" }.joined(separator: "&")
        return "kafka://" + bootstrapServers.joined(separator: ",") + (query.isEmpty ? "" : "?" + query)
    }

    static func isSecret(_ name: String) -> Bool {
        ["password", "secret", "key"].contains { name.lowercased().contains($0) }
    }

    /// A URL that did not parse, with the values of its query hidden.
    static func redacted(_ url: String) -> String {
        guard let question = url.firstIndex(of: "?") else { return url }
        return String(url[..<question]) + "?…"
    }

    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
