import Synchronization
import Testing

@testable import QueryService

/// A rebuild's steps that have nothing to count (building a PostgreSQL index over millions of
/// rows) must not leave its progress stream silent, nor outlive a failed report.
@Suite struct RebuildProgressTests {
    @Test func aLongStepIsReportedWhileItRunsAndEndsTheReportsWhenItEnds() async throws {
        let reports = Mutex(0)
        let finished = Mutex(false)
        try await Rebuilder.whileReporting(every: .milliseconds(20), { () }, to: { _ in reports.withLock { $0 += 1 } }) {
            // The step lasts until it has been reported three times (or 30 s: then the check fails).
            let deadline = ContinuousClock.now + .seconds(30)
            while reports.withLock({ $0 }) < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            finished.withLock { $0 = true }
        }
        #expect(finished.withLock { $0 }, "returns only once the step is done")
        let after = reports.withLock { $0 }
        #expect(after >= 3, "reported while it ran")
        try await Task.sleep(for: .milliseconds(200))
        #expect(reports.withLock { $0 } == after, "no report after the step")
    }

    @Test func aFailedReportIsThrownOnlyOnceTheStepHasFinished() async throws {
        struct Gone: Error {}
        let finished = Mutex(false)
        await #expect(throws: Gone.self) {
            try await Rebuilder.whileReporting(every: .milliseconds(20), { () }, to: { _ in throw Gone() }) {
                try await Task.sleep(for: .milliseconds(300))
                finished.withLock { $0 = true }
            }
        }
        #expect(finished.withLock { $0 }, "the caller may discard the rebuild: nothing works on it any more")
    }

    @Test func aFailedStepIsThrown() async throws {
        struct Broken: Error {}
        await #expect(throws: Broken.self) {
            try await Rebuilder.whileReporting(every: .seconds(10), { () }, to: { _ in }) { throw Broken() }
        }
    }
}
