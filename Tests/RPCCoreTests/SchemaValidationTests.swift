import Contracts
import RPCCore
import Testing

/// Generated `validate(path:into:)`: violations inside member messages and array elements are
/// named by their full path, whichever depth they sit at.
@Suite struct SchemaValidationTests {
    typealias Broker = CqrsBrokerV1

    func violations(_ message: some SchemaValidated) -> [FieldViolation] {
        var found: [FieldViolation] = []
        message.validate(path: "", into: &found)
        return found
    }

    @Test func aValidRequestHasNoViolations() throws {
        let value = try RawJSON(validating: #"{"amount":1}"#)
        let request = Broker.ProduceRequest(
            topic: "orders", records: [.init(value: value, partition: 0), .init(value: value, timestamp: 5, partition: 3)],
            sequences: [.init(partition: 0, baseSequence: 0)])
        #expect(violations(request).isEmpty)
    }

    @Test func violationsInArrayElementsAreNamedByIndex() throws {
        let value = try RawJSON(validating: #"{"amount":1}"#)
        let request = Broker.ProduceRequest(
            topic: "-bad", records: [.init(value: value, partition: 0), .init(value: value, timestamp: -5, partition: -1)],
            sequences: [.init(partition: 0, baseSequence: 0), .init(partition: 2000, baseSequence: -1)])
        #expect(
            violations(request).map(\.field) == [
                "topic", "records[1].timestamp", "records[1].partition", "sequences[1].partition", "sequences[1].baseSequence",
            ])
        #expect(violations(request)[3].description == "must be at most 1023")
    }

    @Test func aPathGivenFromOutsidePrefixesEveryViolation() throws {
        let request = Broker.ProduceRequest(topic: "t", records: [], sequences: [.init(partition: -1, baseSequence: 0)])
        var found: [FieldViolation] = []
        request.validate(member: "batches[7].", into: &found)
        #expect(found.map(\.field) == ["batches[7].records", "batches[7].sequences[0].partition"])
    }
}
