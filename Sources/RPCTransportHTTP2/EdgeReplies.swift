import Foundation
import NGHTTP2
import RPCCore

/// How a call's final status is written in each protocol the edge speaks.
enum EdgeReplies {
    /// Headers the edge reads itself; the rest of a request's headers become the call's metadata.
    static let reservedRequestHeaders: Set<String> = [
        "content-type", "content-length", "te", "host", "user-agent", "accept", "accept-encoding", "content-encoding",
        "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-message-type",
        "connect-timeout-ms", "connect-protocol-version", "connect-content-encoding", "connect-accept-encoding",
    ]

    /// The metadata key carrying a status's structured details on gRPC: base64 of their JSON
    /// (gRPC's own `grpc-status-details-bin` is protobuf, which the edge does not speak).
    static let detailsTrailer = "jframe-status-details-bin"

    /// The headers of a response that has a body.
    static func responseHeaders(status: Int = 200, contentType: String, extra: [HTTP2Header] = []) -> [HTTP2Header] {
        [HTTP2Header(":status", "\(status)"), HTTP2Header("content-type", contentType)] + extra
    }

    /// gRPC's status fields: `grpc-status`, `grpc-message`, the details and the trailing metadata.
    static func grpcStatus(_ trailers: Trailers) -> [HTTP2Header] {
        var fields = [HTTP2Header("grpc-status", "\(trailers.code)")]
        if let message = trailers.message, !message.isEmpty {
            fields.append(HTTP2Header("grpc-message", PercentEncoding.encode(message)))
        }
        if let details = trailers.details, !details.isEmpty, let json = try? MessageCoding.encode(details) {
            fields.append(HTTP2Header(detailsTrailer, Data(json).base64EncodedString()))
        }
        fields += metadataFields(trailers.metadata)
        return fields
    }

    /// Metadata as header fields, minus keys the protocols reserve.
    static func metadataFields(_ metadata: Metadata?, prefix: String = "") -> [HTTP2Header] {
        guard let metadata else { return [] }
        return metadata.sorted { $0.key < $1.key }
            .filter { !$0.key.hasPrefix("grpc-") && !$0.key.hasPrefix(":") && !reservedRequestHeaders.contains($0.key) }
            .map { HTTP2Header(prefix + $0.key, $0.value) }
    }

    /// Connect's error JSON: `{"code":"not_found","message":…,"details":[{"type","value","debug"}]}`.
    /// Each detail's `value` is base64 of its JSON (Connect's is protobuf bytes); `debug` is the JSON itself.
    static func connectError(_ trailers: Trailers) -> JSONValue {
        var error: [String: JSONValue] = ["code": .string(ConnectCode.name(StatusCode(rawValue: trailers.code)))]
        if let message = trailers.message, !message.isEmpty { error["message"] = .string(message) }
        if let details = trailers.details, !details.isEmpty {
            error["details"] = .array(
                details.map { detail in
                    let json = (try? MessageCoding.encode(detail.value)) ?? []
                    return .object([
                        "type": .string(detail.type), "value": .string(Data(json).base64EncodedString()), "debug": detail.value,
                    ])
                })
        }
        return .object(error)
    }

    /// Connect's end-of-stream message: `{}` on success, else `{"error":…}`, with `metadata` as lists.
    static func connectEndOfStream(_ trailers: Trailers) -> [UInt8] {
        var end: [String: JSONValue] = [:]
        if trailers.code != StatusCode.ok.rawValue { end["error"] = connectError(trailers) }
        let metadata = metadataFields(trailers.metadata)
        if !metadata.isEmpty {
            end["metadata"] = .object(Dictionary(uniqueKeysWithValues: metadata.map { ($0.name, JSONValue.array([.string($0.value)])) }))
        }
        return (try? MessageCoding.encode(JSONValue.object(end))) ?? Array("{}".utf8)
    }
}
