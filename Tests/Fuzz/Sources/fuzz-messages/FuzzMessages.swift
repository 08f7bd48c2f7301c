import Contracts
import Domain
import FuzzSupport
import RPCCore

/// The generated JSON decoders of the messages the services take from clients, on arbitrary
/// bytes: no crash, and a message that decodes encodes and decodes again to the same value. Also
/// the event registry on stored events of every type at schema versions 0 to 3 (what a damaged
/// store or a forged record hands the aggregates and the read models): decode and upcast refuse
/// or succeed, never crash, and an upcast document decodes at the current version.
/// The input's first byte picks the message type, so each type gets its own share of inputs.
@main
enum Target {
    static func main() { runFuzzer { data, count in fuzzMessages(data, count) } }
}

/// Also exported under libFuzzer\'s usual name: the linker keeps libFuzzer\'s own `main` object, which refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessages(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start = data else { return 0 }
    guard count > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: start + 1, count: count - 1))
    let decoders = messageDecoders
    decoders[Int(start.pointee) % decoders.count](bytes)
    return 0
}

private let messageDecoders: [@Sendable ([UInt8]) -> Void] =
    [
        roundTrip(JframeTestingV1.EchoMessage.self),
        roundTrip(JframeTestingV1.ExpandRequest.self),
        roundTrip(CqrsBrokerV1.CreateTopicRequest.self),
        roundTrip(CqrsBrokerV1.ProduceRequest.self),
        roundTrip(CqrsBrokerV1.FetchRequest.self),
        roundTrip(CqrsBrokerV1.JoinGroupRequest.self),
        roundTrip(CqrsBrokerV1.CommitOffsetsRequest.self),
        roundTrip(CqrsCommandsV1.OpenAccountRequest.self),
        roundTrip(CqrsCommandsV1.DepositFundsRequest.self),
        roundTrip(CqrsCommandsV1.PlaceOrderRequest.self),
        roundTrip(CqrsCommandsV1.ReadAllRequest.self),
        roundTrip(CqrsQueriesV1.GetAccountRequest.self),
        roundTrip(CqrsQueriesV1.FindAccountsRequest.self),
        roundTrip(CqrsQueriesV1.ListOrdersRequest.self),
        roundTrip(CqrsQueriesV1.Account.self),
        roundTrip(CqrsCommandsV1.CreateJobRequest.self),
        roundTrip(CqrsCommandsV1.UpdateJobRequest.self),
        roundTrip(CqrsCommandsV1.CreateApplicationRequest.self),
        roundTrip(CqrsQueriesV1.ListJobsRequest.self),
        roundTrip(CqrsQueriesV1.ListApplicationsRequest.self),
    ] + Domains.registry.typeNames.flatMap { type in (0...3).map { version in storedEvent(type, schemaVersion: version) } }

/// Decodes `bytes` as a stored event of `type` at `schemaVersion`; what upcasts must decode at the
/// current version when the direct decode did.
private func storedEvent(_ type: String, schemaVersion: Int) -> @Sendable ([UInt8]) -> Void {
    { bytes in
        let registry = Domains.registry
        let decoded = try? registry.decode(type: type, schemaVersion: schemaVersion, data: bytes)
        guard let upcast = try? registry.upcast(type: type, schemaVersion: schemaVersion, data: bytes) else { return }
        let again = try? registry.decode(type: type, schemaVersion: upcast.schemaVersion, data: upcast.data)
        if (decoded == nil) != (again == nil) { fatalError("\(type) v\(schemaVersion): decode and upcast-then-decode disagree") }
    }
}

private func roundTrip<Message: Codable & Hashable & Sendable>(_ type: Message.Type) -> @Sendable ([UInt8]) -> Void {
    { bytes in checkStableRoundTrip(type, bytes) }
}
