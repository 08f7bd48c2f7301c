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
    /// The session timeouts a consumer-group member may ask for (Kafka's
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`); outside them JoinGroup is
    /// INVALID_SESSION_TIMEOUT.
    public var groupMinSessionTimeoutMs: Int32 = 6_000
    public var groupMaxSessionTimeoutMs: Int32 = 1_800_000

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
    /// The client's address, as DescribeGroups shows a member's host.
    public var peerHost: String

    public init(localHost: String, localPort: Int, peerHost: String = "") {
        self.localHost = localHost
        self.localPort = localPort
        self.peerHost = peerHost
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
        (FindCoordinatorRequest.apiKey, FindCoordinatorRequest.versions),
        (JoinGroupRequest.apiKey, JoinGroupRequest.versions),
        (SyncGroupRequest.apiKey, SyncGroupRequest.versions),
        (HeartbeatRequest.apiKey, HeartbeatRequest.versions),
        (LeaveGroupRequest.apiKey, LeaveGroupRequest.versions),
        (OffsetCommitRequest.apiKey, OffsetCommitRequest.versions),
        (OffsetFetchRequest.apiKey, OffsetFetchRequest.versions),
        (DescribeGroupsRequest.apiKey, DescribeGroupsRequest.versions),
        (ListGroupsRequest.apiKey, ListGroupsRequest.versions),
        (DescribeConfigsRequest.apiKey, DescribeConfigsRequest.versions),
    ]

    /// The one node of this "cluster".
    static let nodeId: Int32 = 0
    static let clusterId = "cqrs-broker"

    let broker: Broker
    let settings: KafkaListenerSettings
    let logger: Logger
    let groups: ClassicGroups

    public init(broker: Broker, settings: KafkaListenerSettings, logger: Logger = Logger(label: "kafka")) {
        self.broker = broker
        self.settings = settings
        self.logger = logger
        self.groups = ClassicGroups(
            limits: .init(minSessionTimeoutMs: settings.groupMinSessionTimeoutMs, maxSessionTimeoutMs: settings.groupMaxSessionTimeoutMs))
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
            case ApiVersionsRequest.apiKey:
                return try await serve(frame, version) { (r: ApiVersionsRequest, _) in self.apiVersions(r, version: version) }
            case MetadataRequest.apiKey:
                return try await serve(frame, version) { (r: MetadataRequest, _) in await self.metadata(r, version: version, connection: connection) }
            case ProduceRequest.apiKey: return try await serve(frame, version) { (r: ProduceRequest, _) in await self.produce(r, version: version) }
            case FetchRequest.apiKey: return try await serve(frame, version) { (r: FetchRequest, _) in await self.fetch(r, version: version) }
            case ListOffsetsRequest.apiKey:
                return try await serve(frame, version) { (r: ListOffsetsRequest, _) in self.listOffsets(r, version: version) }
            case InitProducerIdRequest.apiKey:
                return try await serve(frame, version) { (r: InitProducerIdRequest, _) in self.initProducerId(r, version: version) }
            case CreateTopicsRequest.apiKey:
                return try await serve(frame, version) { (r: CreateTopicsRequest, _) in self.createTopics(r, version: version) }
            case DeleteTopicsRequest.apiKey:
                return try await serve(frame, version) { (r: DeleteTopicsRequest, _) in await self.deleteTopics(r, version: version) }
            case FindCoordinatorRequest.apiKey:
                return try await serve(frame, version) { (r: FindCoordinatorRequest, _) in
                    self.findCoordinator(r, version: version, connection: connection)
                }
            case JoinGroupRequest.apiKey:
                return try await serve(frame, version) { (r: JoinGroupRequest, header) in
                    await self.joinGroup(r, version: version, clientId: header.clientId ?? "", connection: connection)
                }
            case SyncGroupRequest.apiKey:
                return try await serve(frame, version) { (r: SyncGroupRequest, _) in await self.syncGroup(r, version: version) }
            case HeartbeatRequest.apiKey:
                return try await serve(frame, version) { (r: HeartbeatRequest, _) in await self.heartbeat(r, version: version) }
            case LeaveGroupRequest.apiKey:
                return try await serve(frame, version) { (r: LeaveGroupRequest, _) in await self.leaveGroup(r, version: version) }
            case OffsetCommitRequest.apiKey:
                return try await serve(frame, version) { (r: OffsetCommitRequest, _) in await self.offsetCommit(r, version: version) }
            case OffsetFetchRequest.apiKey:
                return try await serve(frame, version) { (r: OffsetFetchRequest, _) in self.offsetFetch(r, version: version) }
            case DescribeGroupsRequest.apiKey:
                return try await serve(frame, version) { (r: DescribeGroupsRequest, _) in await self.describeGroups(r, version: version) }
            case DescribeConfigsRequest.apiKey:
                return try await serve(frame, version) { (r: DescribeConfigsRequest, _) in self.describeConfigs(r, version: version) }
            case ListGroupsRequest.apiKey:
                return try await serve(frame, version) { (r: ListGroupsRequest, _) in await self.listGroups(r, version: version) }
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
        _ frame: [UInt8], _ version: Int16, _ handler: (Request, KafkaRequestHeader) async -> Response?
    ) async throws(KafkaDecodeError) -> KafkaReply {
        var reader = KafkaReader(frame)
        let header = try KafkaRequestHeader(from: &reader, flexible: Request.isFlexible(version))
        let request = try Request(bytes: frame[reader.position...], version: version)
        guard let response = await handler(request, header) else { return .silent }
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
