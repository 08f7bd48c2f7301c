import EventStore
import Testing

/// Every stored event carries `EventChecksum.of` as it was when the row was written: the value
/// for a given row must never change, or every database written before would read as damaged.
@Suite struct EventChecksumTests {
    static func event(data: [UInt8], correlationId: String?, causationId: String?, traceParent: String?) -> RecordedEvent {
        RecordedEvent(
            eventId: "7f1c1c9e-4e5b-4a43-9d2e-2f8e0d4a6b01", streamId: "BankAccount-ünï-42", type: "FundsDeposited", schemaVersion: 2,
            streamVersion: 17, position: 123_456_789_012, recordedAt: 1_764_979_200_123, correlationId: correlationId, causationId: causationId,
            data: data, traceParent: traceParent)
    }

    @Test func aRowsChecksumIsTheOneItWasStoredWith() {
        let small = Array(#"{"accountId":"a-1","amount":{"amountMinor":500,"currency":"EUR"}}"#.utf8)
        let large = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let cases: [(RecordedEvent, Int64)] = [
            (Self.event(data: small, correlationId: "corr", causationId: nil, traceParent: nil), 3_481_701_040),
            (Self.event(data: small, correlationId: nil, causationId: "", traceParent: nil), 2_089_281_735),
            (
                Self.event(data: [], correlationId: "c", causationId: "d", traceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                2_161_048_818
            ),
            (Self.event(data: large, correlationId: String(repeating: "x", count: 600), causationId: nil, traceParent: nil), 79_686_592),
        ]
        for (index, (event, expected)) in cases.enumerated() {
            #expect(EventChecksum.of(event) == expected, "case \(index)")
        }
    }
}
