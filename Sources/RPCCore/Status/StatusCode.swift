/// The outcome of a call: the 17 codes of gRPC, with gRPC's names and numbers.
///
/// A struct over a raw value rather than an enum, so that a code added by a later version of the
/// protocol decodes, travels and prints instead of breaking every `switch` (grpc-swift does the same).
/// Unknown numbers are kept as they are and described as `CODE_<n>`.
public struct StatusCode: Hashable, Sendable, CustomStringConvertible {
    /// The number on the wire (`code` in a TRAILERS frame).
    public let rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let ok = StatusCode(rawValue: 0)
    public static let cancelled = StatusCode(rawValue: 1)
    public static let unknown = StatusCode(rawValue: 2)
    public static let invalidArgument = StatusCode(rawValue: 3)
    public static let deadlineExceeded = StatusCode(rawValue: 4)
    public static let notFound = StatusCode(rawValue: 5)
    public static let alreadyExists = StatusCode(rawValue: 6)
    public static let permissionDenied = StatusCode(rawValue: 7)
    public static let resourceExhausted = StatusCode(rawValue: 8)
    public static let failedPrecondition = StatusCode(rawValue: 9)
    public static let aborted = StatusCode(rawValue: 10)
    public static let outOfRange = StatusCode(rawValue: 11)
    public static let unimplemented = StatusCode(rawValue: 12)
    public static let internalError = StatusCode(rawValue: 13)
    public static let unavailable = StatusCode(rawValue: 14)
    public static let dataLoss = StatusCode(rawValue: 15)
    public static let unauthenticated = StatusCode(rawValue: 16)

    /// Every code this version of the protocol defines, in numeric order.
    public static let allDefined: [StatusCode] = (0...16).map(StatusCode.init(rawValue:))

    private static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
        "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// gRPC's upper-snake name, for example `INVALID_ARGUMENT`.
    public var name: String {
        Self.names.indices.contains(rawValue) ? Self.names[rawValue] : "CODE_\(rawValue)"
    }

    /// The code named `name` (gRPC's upper-snake spelling), if this version defines it.
    public init?(name: String) {
        guard let index = Self.names.firstIndex(of: name.uppercased()) else { return nil }
        self.init(rawValue: index)
    }

    public var description: String { name }
}
