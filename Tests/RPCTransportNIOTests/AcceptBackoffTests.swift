import Testing

@testable import RPCTransportNIO

/// The pause after a failed accept (out of descriptors) and the rate of the warning about it.
@Suite("AcceptBackoff")
struct AcceptBackoffTests {
    @Test func pausesDoubleFromFiveMillisecondsToOneSecondAndStartOverAfterAnAccept() {
        var policy = AcceptBackoff()
        var pauses: [Int64] = []
        for i in 0..<12 { pauses.append(policy.failed(now: Int64(i)).pause / 1_000_000) }
        #expect(pauses == [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000])
        policy.accepted()
        #expect(policy.failed(now: 100).pause == 5_000_000)
    }

    @Test func theWarningComesOncePerIntervalWithTheFailuresCountedSince() {
        var policy = AcceptBackoff(warningIntervalNanoseconds: 1_000)
        #expect(policy.failed(now: 0).warnAfter == 1)
        #expect((1...9).map { policy.failed(now: Int64($0 * 100)).warnAfter } == Array(repeating: nil, count: 9))
        #expect(policy.failed(now: 1_000).warnAfter == 10)
        #expect(policy.failed(now: 1_500).warnAfter == nil)
    }
}
