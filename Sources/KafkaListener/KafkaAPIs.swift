public import BrokerCore
import KafkaMessages
import KafkaWire
import LogStorage
public import Logging

/// The listener's settings (flags `--kafka-*` of the broker).
public struct KafkaListenerSettings: Sendable {
    /// `host:port` to bind; port 0 picks a free one.
    public var address: String
    /// The `host:port` Metadata tells clients to connect to. nil: the address the client reached
    /// this connection on (right on one machine; behind NAT or port mapping it must be set).
    public var advertisedAddress: (host: String, port: Int)?
    /// A request frame larger than this closes the connection (Kafka's `socket.request.max.bytes`).
    public var maxRequestBytes = 100 << 20
    /// Longest Fetch long-poll honoured, whatever a client asks.
    public var maxFetchWait = Duration.seconds(30)

    public init(address: String) { self.address = address }
}

/// What a connection does after a request.
public enum KafkaReply: Sendable, Equatable {
    /// Writes this response frame.
    case respond([UInt8])
    /// Writes nothing (Produce with acks=0).
    case silent
    /// Closes the connection, as Kafka does on a request it cannot parse or does not serve.
    case close(reason: String)
}

/// What a request handler knows about the connection it came on.
public struct KafkaConnectionInfo: Sendable {
    /// Where this connection was accepted: the address Metadata advertises unless one is set.
    public var localHost: String
    public var localPort: Int

    public init(localHost: String, localPort: Int) {
        self.localHost = localHost
        self.localPort = localPort
    }
}

/// Kafka's requests served from the broker's engine: parses a request frame, calls the API's
/// handler, and frames its response. No I/O here (``KafkaListener`` owns the sockets), so every
/// request can be tested byte for byte.
public final class KafkaAPIs: Sendable {
    /// The versions advertised per API key. Some are advertised but not parsed (Produce 0–2):
    /// librdkafka before 2.11.1 enables compression only if Produce 0 is in the range, as Kafka
    /// 4.0 found (KAFKA-18659); such a request closes the connection, as Kafka 4 does.
    public static let advertised: [(key: Int16, versions: ClosedRange<Int16>)] = [
        (ProduceRequest.apiKey, 0...9),
        (FetchRequest.apiKey, FetchRequest.versions),
        (ListOffsetsRequest.apiKey, ListOffsetsRequest.versions),
        (MetadataRequest.apiKey, MetadataRequest.versions),
        (ApiVersionsRequest.apiKey, ApiVersionsRequest.versions),
        (CreateTopicsRequest.apiKey, CreateTopicsRequest.versions),
        (DeleteTopicsRequest.apiKey, DeleteTopicsRequest.versions),
        (InitProducerIdRequest.apiKey, InitProducerIdRequest.versions),
    ]

    /// The one node of this "cluster".
    static let nodeId: Int32 = 0
    static let clusterId = "cqrs-broker"

    let broker: Broker
    let settings: KafkaListenerSettings
    let logger: Logger

    public init(broker: Broker, settings: KafkaListenerSettings, logger: Logger = Logger(label: "kafka")) {
        self.broker = broker
        self.settings = settings
        self.logger = logger
    }

    /// Answers one request frame (the bytes after its size).
    public func handle(_ frame: [UInt8], connection: KafkaConnectionInfo) async -> KafkaReply {
        guard let (apiKey, version, correlationId) = try? KafkaRequestHeader.peek(frame[...]) else {
            return .close(reason: "a request of \(frame.count) bytes is shorter than a request header")
        }
        if apiKey == ApiVersionsRequest.apiKey && !ApiVersionsRequest.versions.contains(version) {
            // KIP-511: a client newer than us learns our range from a v0 reply, then retries.
            var response = ApiVersionsResponse()
            response.errorCode = KafkaErrorCode.unsupportedVersion.rawValue
            response.apiKeys = Self.apiVersionList
            return .respond(KafkaResponseFrame.make(correlationId: correlationId, flexibleHeader: false, body: response.encoded(version: 0)))
        }
        guard let parsed = KafkaParsedVersions.byKey[apiKey], parsed.contains(version) else {
            logger.info(
                "closing a connection: API key \(apiKey) v\(version) is not served",
                metadata: ["kafka.api_key": "\(apiKey)", "kafka.api_version": "\(version)"])
            return .close(reason: "API key \(apiKey) v\(version) is not served")
        }
        do {
            switch apiKey {
            case ApiVersionsRequest.apiKey: return try await serve(ApiVersionsRequest.self, frame, version) { self.apiVersions($0, version: version) }
            case MetadataRequest.apiKey:
                return try await serve(MetadataRequest.self, frame, version) { await self.metadata($0, version: version, connection: connection) }
            case ProduceRequest.apiKey: return try await serve(ProduceRequest.self, frame, version) { await self.produce($0, version: version) }
            case FetchRequest.apiKey: return try await serve(FetchRequest.self, frame, version) { await self.fetch($0, version: version) }
            case ListOffsetsRequest.apiKey:
                return try await serve(ListOffsetsRequest.self, frame, version) { self.listOffsets($0, version: version) }
            case InitProducerIdRequest.apiKey:
                return try await serve(InitProducerIdRequest.self, frame, version) { self.initProducerId($0, version: version) }
            case CreateTopicsRequest.apiKey:
                return try await serve(CreateTopicsRequest.self, frame, version) { self.createTopics($0, version: version) }
            case DeleteTopicsRequest.apiKey:
                return try await serve(DeleteTopicsRequest.self, frame, version) { await self.deleteTopics($0, version: version) }
            default:
                return .close(reason: "API key \(apiKey) is parsed but has no handler")
            }
        } catch {
            logger.info(
                "closing a connection: a request does not parse",
                metadata: ["kafka.api_key": "\(apiKey)", "kafka.api_version": "\(version)", "error": "\(error)"])
            return .close(reason: "API key \(apiKey) v\(version) does not parse: \(error)")
        }
    }

    /// Parses the header and body, runs the handler, frames the response (nil: no response).
    private func serve<Request: KafkaMessage, Response: KafkaMessage>(
        _: Request.Type, _ frame: [UInt8], _ version: Int16, _ handler: (Request) async -> Response?
    ) async throws(KafkaDecodeError) -> KafkaReply {
        var reader = KafkaReader(frame)
        let header = try KafkaRequestHeader(from: &reader, flexible: Request.isFlexible(version))
        let request = try Request(bytes: frame[reader.position...], version: version)
        guard let response = await handler(request) else { return .silent }
        // ApiVersions answers with header v0 in every version (KIP-511).
        let flexibleHeader = Response.isFlexible(version) && Request.apiKey != ApiVersionsRequest.apiKey
        return .respond(
            KafkaResponseFrame.make(correlationId: header.correlationId, flexibleHeader: flexibleHeader, body: response.encoded(version: version)))
    }

    // MARK: ApiVersions

    static let apiVersionList: [ApiVersionsResponse.ApiVersion] = advertised.sorted { $0.key < $1.key }.map { entry in
        var version = ApiVersionsResponse.ApiVersion()
        version.apiKey = entry.key
        version.minVersion = entry.versions.lowerBound
        version.maxVersion = entry.versions.upperBound
        return version
    }

    func apiVersions(_ request: ApiVersionsRequest, version: Int16) -> ApiVersionsResponse {
        var response = ApiVersionsResponse()
        response.apiKeys = Self.apiVersionList
        return response
    }
}
